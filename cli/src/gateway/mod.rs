//! `dashscope gateway`: a local HTTP server that OpenAI-compatible and DashScope clients point
//! at instead of DashScope. Every request goes through the library's one execution path
//! (`Client::send_raw`, or the typed calls for a transcription), so a client gains what the
//! library does: local files uploaded to the temporary storage, the OSS header exactly when
//! needed, the upload cache, retries, the shared budgets and typed errors, which are answered
//! in the client's own shape.
//!
//! - `/v1/chat/completions`, `/v1/models`: OpenAI's paths, sent to compatible mode; streams
//!   passed on chunk by chunk as they arrive.
//! - `/v1/audio/transcriptions`: OpenAI's multipart upload, spooled to disk, uploaded, run as a
//!   recorded-file transcription task and waited for (`audio.rs`).
//! - `/api/v1/…`: DashScope's native paths, forwarded (`native`).
//!
//! Security (`guard`): loopback only unless `--listen` names another address and `--token` is
//! set; a request from a browser page (an `Origin`) or for another host name (DNS rebinding)
//! is refused without a token; local files only under `--files` (`files.rs`).

mod audio;
mod errors;
mod files;
mod spool;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use clap::Args;
use dashscope_oss::{Callback, Client, Config, RawRequest, UploadEvent};

use crate::Global;
use crate::exit::*;
use crate::output::{Out, summary};
use errors::{Refusal, Shape};
use files::LocalFiles;
use spool::Spool;

/// The most bytes of a JSON request body: a chat with a few `data:` URIs of the service's
/// 10 MiB each (base64 makes 10 MiB about 13.4 MiB).
const JSON_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// Clients (keys) with a library client of their own at once; more start the map afresh.
const MAX_CLIENTS: usize = 256;

#[derive(Args, Debug)]
pub(crate) struct GatewayArgs {
    /// The address to listen on (default 127.0.0.1). Another than a loopback address needs
    /// --token.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// The port (0: any free port, printed on the first line).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// The token clients must present as their bearer key (default:
    /// DASHSCOPE_GATEWAY_TOKEN). The gateway then calls DashScope with its own key.
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// A directory whose files clients may name as local paths or file:// URIs (repeatable;
    /// none by default: a local path is refused).
    #[arg(long = "files", value_name = "DIR")]
    files: Vec<PathBuf>,
    /// The largest audio or video file a transcription request may upload (default 2GiB, the
    /// service's limit for recorded files).
    #[arg(long = "max-upload", value_name = "SIZE", value_parser = crate::parse_size)]
    max_upload: Option<u64>,
}

/// The largest recorded file the transcription documentation admits (2 GB).
const DEFAULT_MAX_UPLOAD: u64 = 2 * 1024 * 1024 * 1024;

/// What every request of the gateway shares.
pub(crate) struct Gateway {
    clients: Clients,
    files: LocalFiles,
    spool: Arc<Spool>,
    token: Option<String>,
    /// The `Host` values a client without a token may use (loopback names of the port).
    hosts: Option<Vec<String>>,
    max_upload: u64,
}

/// One library client per key, reused; or the gateway's own for every request.
struct Clients {
    config: Config,
    own: Option<Client>,
    by_key: Mutex<HashMap<String, Client>>,
}

impl Clients {
    /// The client for a request's bearer key.
    fn get(&self, bearer: Option<&str>) -> Result<Client, dashscope_oss::Error> {
        if let Some(own) = &self.own {
            return Ok(own.clone());
        }
        let key = bearer
            .filter(|k| !k.trim().is_empty())
            .ok_or(dashscope_oss::Error::MissingApiKey)?;
        let mut map = self.by_key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(client) = map.get(key) {
            return Ok(client.clone());
        }
        let client = Client::new(self.config.clone().api_key(key))?;
        if map.len() >= MAX_CLIENTS {
            map.clear();
        }
        map.insert(key.to_owned(), client.clone());
        Ok(client)
    }
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Which shape a path's errors take.
fn shape_of(path: &str) -> Shape {
    if path.starts_with("/api/") {
        Shape::DashScope
    } else {
        Shape::OpenAi
    }
}

/// Equal in time independent of where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Every request passes here first: the token, or (without one) only loopback host names and
/// no browser origin.
async fn guard(State(gateway): State<Arc<Gateway>>, request: Request, next: Next) -> Response {
    let shape = shape_of(request.uri().path());
    let headers = request.headers();
    match &gateway.token {
        Some(token) => {
            if !bearer(headers).is_some_and(|b| same_secret(b, token)) {
                return Refusal::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_token",
                    "this gateway needs its token as the bearer key (Authorization: Bearer TOKEN)",
                )
                .render(shape);
            }
        }
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default();
            if let Some(hosts) = &gateway.hosts
                && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
            {
                return Refusal::new(
                    StatusCode::FORBIDDEN,
                    "host_not_allowed",
                    format!("host {host:?} is not this gateway's loopback address"),
                )
                .render(shape);
            }
            if headers.contains_key(header::ORIGIN) {
                return Refusal::new(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "requests from web pages are refused unless the gateway has a --token",
                )
                .render(shape);
            }
        }
    }
    next.run(request).await
}

/// A request body read whole, up to [`JSON_BODY_LIMIT`].
async fn read_body(body: Body) -> Result<axum::body::Bytes, Refusal> {
    axum::body::to_bytes(body, JSON_BODY_LIMIT)
        .await
        .map_err(|_| {
            Refusal::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request_too_large",
                format!(
                    "the request body is over {} MiB, or was cut short",
                    JSON_BODY_LIMIT / (1024 * 1024)
                ),
            )
        })
}

/// A JSON body, checked to be JSON (without building it: the library parses it once more as
/// it resolves its media, and checks its local files against `--files` then, `files.rs`).
fn checked_json(bytes: axum::body::Bytes) -> Result<Vec<u8>, Refusal> {
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| Refusal::bad(format!("the body is not JSON: {e}")))?;
    Ok(bytes.to_vec())
}

/// An answer passed on as it arrives: its status, its type and request id, its body chunk by
/// chunk. A client that goes away drops the body, and with it the upstream connection.
fn pass_on(response: reqwest::Response) -> Response {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::OK);
    let mut headers = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::CACHE_CONTROL] {
        if let Some(v) = response.headers().get(name.as_str())
            && let Ok(v) = axum::http::HeaderValue::from_bytes(v.as_bytes())
        {
            headers.insert(name, v);
        }
    }
    if let Some(v) = response.headers().get("x-request-id")
        && let Ok(v) = axum::http::HeaderValue::from_bytes(v.as_bytes())
    {
        headers.insert("x-request-id", v);
    }
    let body = Body::from_stream(response.bytes_stream());
    (status, headers, body).into_response()
}

/// Sends a request for a client and passes the answer on, or the error in its shape.
async fn forward(
    gateway: &Gateway,
    shape: Shape,
    headers: &HeaderMap,
    request: RawRequest,
) -> Response {
    let client = match gateway.clients.get(bearer(headers)) {
        Ok(client) => client,
        Err(e) => return errors::respond(shape, &e),
    };
    match client.send_raw(request).await {
        Ok(response) => pass_on(response),
        Err(e) => {
            tracing::info!(error = %e, "gateway: request failed");
            errors::respond(shape, &e)
        }
    }
}

/// `POST /v1/chat/completions`: to compatible mode, streamed or not as the client asked.
async fn chat(State(gateway): State<Arc<Gateway>>, headers: HeaderMap, body: Body) -> Response {
    let shape = Shape::OpenAi;
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r.render(shape),
    };
    let body = match checked_json(body) {
        Ok(b) => b,
        Err(r) => return r.render(shape),
    };
    let request = RawRequest::post("/compatible-mode/v1/chat/completions").json(body);
    forward(&gateway, shape, &headers, request).await
}

/// `GET /v1/models`: compatible mode's list.
async fn models(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    forward(
        &gateway,
        Shape::OpenAi,
        &headers,
        RawRequest::get("/compatible-mode/v1/models"),
    )
    .await
}

/// Headers of a native request that go on: DashScope's own (`X-DashScope-Async`,
/// `X-DashScope-SSE`, …; the library keeps the authorization, workspace and OSS header to
/// itself) and `Accept`.
fn native_headers(mut request: RawRequest, headers: &HeaderMap) -> RawRequest {
    for (name, value) in headers {
        if name == header::ACCEPT || name.as_str().starts_with("x-dashscope-") {
            request = request.header(name.clone(), value.clone());
        }
    }
    request
}

/// `/api/v1/…`: forwarded as it came (the path, the query, DashScope's headers, the body).
async fn native(State(gateway): State<Arc<Gateway>>, request: Request) -> Response {
    let shape = Shape::DashScope;
    let (parts, body) = request.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |p| p.as_str().to_owned());
    let method = match reqwest::Method::from_bytes(parts.method.as_str().as_bytes()) {
        Ok(m) => m,
        Err(_) => return Refusal::bad("unknown method").render(shape),
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(r) => return r.render(shape),
    };
    let mut raw = native_headers(RawRequest::new(method, path), &parts.headers);
    if !body.is_empty() {
        match checked_json(body) {
            Ok(b) => raw = raw.json(b),
            Err(r) => return r.render(shape),
        }
    }
    forward(&gateway, shape, &parts.headers, raw).await
}

async fn not_found(request: Request) -> Response {
    let path = request.uri().path().to_owned();
    Refusal::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "{path} is not a path of this gateway (/v1/chat/completions, /v1/models, /v1/audio/transcriptions, /api/v1/…)"
        ),
    )
    .render(shape_of(&path))
}

fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/models", get(models))
        .route("/v1/audio/transcriptions", post(audio::transcriptions))
        .route("/api/v1/{*rest}", any(native))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(gateway.clone(), guard))
        .with_state(gateway)
}

/// The address to listen on, and whether it is loopback.
fn listen_addr(args: &GatewayArgs) -> Result<SocketAddr, String> {
    let Some(listen) = &args.listen else {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), args.port));
    };
    if let Ok(addr) = listen.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = listen
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map_err(|_| {
            format!("--listen {listen:?}: not an IP address (e.g. 127.0.0.1 or 0.0.0.0)")
        })?;
    Ok(SocketAddr::new(ip, args.port))
}

pub(crate) async fn run(global: &Global, args: GatewayArgs) -> u8 {
    let addr = match listen_addr(&args) {
        Ok(a) => a,
        Err(why) => {
            note!("dashscope: {why}");
            return EXIT_USAGE;
        }
    };
    let token = args.token.clone().or_else(|| {
        std::env::var("DASHSCOPE_GATEWAY_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
    });
    if !addr.ip().is_loopback() && token.is_none() {
        note!(
            "dashscope: --listen {} is not a loopback address: clients there must present a token (--token or DASHSCOPE_GATEWAY_TOKEN)",
            addr.ip()
        );
        return EXIT_USAGE;
    }
    if token.as_deref().is_some_and(|t| t.trim().len() < 16) {
        note!("dashscope: the token is too short: at least 16 characters");
        return EXIT_USAGE;
    }
    let files = match LocalFiles::new(&args.files) {
        Ok(f) => f,
        Err(why) => {
            note!("dashscope: {why}");
            return EXIT_USAGE;
        }
    };
    let quiet = global.quiet;
    let observer: Callback<UploadEvent> = Arc::new(move |event: &UploadEvent| {
        if let (false, UploadEvent::Uploaded { path, file }) = (quiet, event) {
            note!(
                "gateway: {} -> {}",
                summary(&path.display().to_string(), file),
                file.url
            );
        }
    });
    let (config, _emulator) = match crate::connect::configure(global, None, Some(observer)).await {
        Ok(c) => c,
        Err(code) => return code,
    };
    let config = files.configure(config);
    // The gateway's own key: --api-key, DASHSCOPE_API_KEY, or the built-in emulator's.
    let own_key = global.emulator
        || global.api_key.is_some()
        || std::env::var("DASHSCOPE_API_KEY").is_ok_and(|k| !k.trim().is_empty());
    if token.is_some() && !own_key {
        note!(
            "dashscope: with a token, clients present the token, not a DashScope key: give the gateway its own (DASHSCOPE_API_KEY or --api-key)"
        );
        return EXIT_USAGE;
    }
    let own = if own_key {
        match Client::new(config.clone()) {
            Ok(c) => Some(c),
            Err(e) => {
                report(&e, None);
                return exit_code(&e);
            }
        }
    } else {
        None
    };
    let spool = match Spool::create() {
        Ok(s) => s,
        Err(e) => {
            note!("dashscope: cannot create the gateway's spool directory: {e}");
            return EXIT_SOFTWARE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            note!("dashscope: cannot listen on {addr}: {e}");
            spool.remove();
            return EXIT_SOFTWARE;
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let port = bound.port();
    let shown = if bound.ip().is_unspecified() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    } else {
        bound
    };
    let hosts = (token.is_none()).then(|| {
        let mut hosts = vec![
            format!("127.0.0.1:{port}"),
            format!("localhost:{port}"),
            format!("[::1]:{port}"),
        ];
        if port == 80 {
            hosts.extend(["127.0.0.1", "localhost", "[::1]"].map(str::to_owned));
        }
        hosts
    });
    let gateway = Arc::new(Gateway {
        clients: Clients {
            config,
            own,
            by_key: Mutex::new(HashMap::new()),
        },
        files,
        spool: spool.clone(),
        token,
        hosts,
        max_upload: args.max_upload.unwrap_or(DEFAULT_MAX_UPLOAD),
    });
    let stop = dashscope_emulator::stop_signal();
    // The first stdout line is for scripts and OpenAI's SDKs (`OPENAI_BASE_URL`).
    if let Err(code) = Out::new().line(&format!("OPENAI_BASE_URL=http://{shown}/v1")) {
        spool.remove();
        return code;
    }
    if !quiet {
        note!("gateway: DashScope's SDKs: DASHSCOPE_HTTP_BASE_URL=http://{shown}/api/v1");
        match gateway.files.roots() {
            [] => note!("gateway: local files: none (--files DIR to allow a directory)"),
            roots => {
                let shown: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
                note!("gateway: local files under: {}", shown.join(", "));
            }
        }
        if gateway.token.is_some() {
            note!("gateway: clients present the token as their bearer key");
        } else if own_key {
            note!("gateway: every request uses the gateway's own DashScope key");
        } else {
            note!("gateway: each client's bearer key is its DashScope key");
        }
        note!("gateway: stop with Ctrl-C");
    }
    let server = axum::serve(listener, router(gateway));
    tokio::select! {
        served = server => {
            if let Err(e) = served {
                note!("dashscope: the gateway stopped: {e}");
            }
        }
        () = stop => {}
    }
    spool.remove();
    EXIT_OK
}
