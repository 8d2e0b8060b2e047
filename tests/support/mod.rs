//! A canned HTTP/1.1 server on 127.0.0.1 for tests of the typed client: it answers every
//! request with one fixed response and records what it received. (The DashScope emulator is
//! the realistic server; this one exists to feed the client exact bytes.)
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The key every test uses; `tests/secrets.rs` and CI check it never shows up in output.
pub const TEST_KEY: &str = "sk-test-0f9e8d7c6b5a4-never-print-me";

#[derive(Clone, Debug)]
pub struct Captured {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request as a reviewer reads it: request line, sorted headers (the key replaced by a
    /// placeholder, connection-level headers left out), and the JSON body pretty-printed.
    pub fn render(&self) -> String {
        let mut headers: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "host" | "content-length"))
            .map(|(n, v)| format!("{n}: {}", v.replace(TEST_KEY, "<TEST_KEY>")))
            .collect();
        headers.sort();
        let body = match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Err(_) => String::from_utf8_lossy(&self.body).into_owned(),
        };
        format!(
            "{} {}\n{}\n\n{}",
            self.method,
            self.target,
            headers.join("\n"),
            body
        )
    }
}

#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Canned {
    pub fn json(status: u16, body: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes().to_vec(),
        }
    }

    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

pub struct Server {
    pub url: String,
    captured: Arc<Mutex<Vec<Captured>>>,
}

impl Server {
    pub async fn start(response: Canned) -> Self {
        Self::sequence(vec![response]).await
    }

    /// The n-th connection gets the n-th answer; the last one answers every connection after.
    pub async fn sequence(responses: Vec<Canned>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let captured = Arc::new(Mutex::new(Vec::new()));
        let log = captured.clone();
        tokio::spawn(async move {
            let mut served = 0usize;
            while let Ok((mut socket, _)) = listener.accept().await {
                let Some(response) = responses
                    .get(served.min(responses.len().saturating_sub(1)))
                    .cloned()
                else {
                    return;
                };
                served += 1;
                let log = log.clone();
                tokio::spawn(async move {
                    if let Some(request) = read_request(&mut socket).await {
                        log.lock().expect("log").push(request);
                    }
                    let mut head = format!("HTTP/1.1 {} Canned\r\n", response.status);
                    for (n, v) in &response.headers {
                        head.push_str(&format!("{n}: {v}\r\n"));
                    }
                    head.push_str(&format!(
                        "content-length: {}\r\nconnection: close\r\n\r\n",
                        response.body.len()
                    ));
                    // The client may hang up early (it reads at most 64 KiB of an error body).
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&response.body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { url, captured }
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.captured.lock().expect("log").clone()
    }

    pub fn only_request(&self) -> Captured {
        let all = self.requests();
        assert_eq!(
            all.len(),
            1,
            "expected exactly one request, got {}",
            all.len()
        );
        all.into_iter().next().expect("one request")
    }
}

pub async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<Captured> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Captured {
        method,
        target,
        headers,
        body,
    })
}

pub fn client(url: &str) -> dashscope_oss::Client {
    dashscope_oss::Client::new(dashscope_oss::Config::new().api_key(TEST_KEY).base_url(url))
        .expect("client for the canned server")
}

/// A new, empty directory for the CLI's `XDG_CACHE_HOME`: each CLI run of a test gets its own
/// upload cache unless the test shares one on purpose (and none writes to the user's).
#[allow(dead_code)]
pub fn fresh_cache_home() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "dashscope-oss-test-cache-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a cache home");
    dir
}

/// A hostile server on 127.0.0.1: every connection is handed to `serve` as it is (read the
/// request with [`read_request`], then write whatever bytes, at whatever pace). Returns the
/// base URL.
pub async fn scripted<F, Fut>(serve: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let serve = Arc::new(serve);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(serve(socket));
        }
    });
    url
}
