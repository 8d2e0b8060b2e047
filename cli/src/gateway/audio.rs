//! `POST /v1/audio/transcriptions`: OpenAI's multipart upload of one audio or video file,
//! spooled to disk as it arrives (never held whole), uploaded to the temporary storage for the
//! model the client names (`paraformer-v2`, `fun-asr`, …), transcribed as a recorded-file task,
//! waited for, and answered in OpenAI's shape: `json` (`{"text"}`), `text`, `verbose_json`
//! (with segments), `srt` or `vtt`.
//!
//! OpenAI's API reference ("Create transcription") names the form fields: `file`, `model`,
//! `language`, `prompt`, `response_format`, `temperature`, `timestamp_granularities[]`.
//! `language` becomes the task's `language_hints`; the others have no DashScope counterpart
//! and are read and left.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use dashscope_oss::api::types;
use dashscope_oss::task::WaitOptions;
use dashscope_oss::{Client, UploadSource};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::errors::{self, Refusal, Shape};
use super::spool::{SpoolFile, safe_name};
use super::{Gateway, bearer};

/// What the form may carry beyond the file: its boundaries and text fields.
const FORM_SLACK: u64 = 1024 * 1024;
/// The most bytes of one text field.
const FIELD_LIMIT: usize = 64 * 1024;
/// The most fields of one form.
const MAX_FIELDS: usize = 32;
/// After a refusal, what is left of the body is read and dropped, up to this much, so that
/// the client (still sending) reads the answer instead of a reset connection; past it the
/// connection is closed. nginx's `lingering_close` does the same for the same reason.
const DRAIN_LIMIT: u64 = 4 * 1024 * 1024 * 1024;

/// The form's fields, the file spooled.
struct Form {
    file: Option<(SpoolFile, u64)>,
    model: Option<String>,
    language: Option<String>,
    response_format: Option<String>,
}

/// The body's chunks, shared so that what is left can be drained after the form is dropped.
type Shared = Arc<tokio::sync::Mutex<axum::body::BodyDataStream>>;

pub(super) async fn transcriptions(
    State(gateway): State<Arc<Gateway>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let shape = Shape::OpenAi;
    let limit = gateway.max_upload;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit.saturating_add(FORM_SLACK)) {
        // Refused from its headers: nothing of it is read.
        return too_large(limit).render(shape);
    }
    let Some(boundary) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| multer::parse_boundary(v).ok())
    else {
        return Refusal::bad("expected a multipart/form-data body (file, model, …)").render(shape);
    };
    let shared: Shared = Arc::new(tokio::sync::Mutex::new(body.into_data_stream()));
    let mut form = Form {
        file: None,
        model: None,
        language: None,
        response_format: None,
    };
    if let Err(refusal) = read_form(&gateway, shared.clone(), boundary, &mut form).await {
        if let Some((file, _)) = form.file.take() {
            file.remove().await;
        }
        drain(&shared).await;
        return refusal.render(shape);
    }
    let Some((file, size)) = form.file else {
        return Refusal::bad("the form has no `file` field: the audio or video to transcribe")
            .render(shape);
    };
    let (model, format) = match check_fields(form.model, form.response_format) {
        Ok(fields) => fields,
        Err(refusal) => {
            file.remove().await;
            return refusal.render(shape);
        }
    };
    let client = match gateway.clients.get(bearer(&headers)) {
        Ok(client) => client,
        Err(e) => {
            file.remove().await;
            return errors::respond(shape, &e);
        }
    };
    tracing::info!(model, size, "gateway: transcription");
    match transcribe(&client, &model, form.language, file).await {
        Ok(transcript) => answer(&format, &transcript),
        Err(e) => errors::respond(shape, &e),
    }
}

/// The model and the answer's format, or the refusal to answer.
fn check_fields(
    model: Option<String>,
    format: Option<String>,
) -> Result<(String, String), Refusal> {
    let Some(model) = model.filter(|m| !m.trim().is_empty()) else {
        return Err(Refusal::bad(
            "the form has no `model` field (e.g. paraformer-v2)",
        ));
    };
    let format = format.unwrap_or_else(|| "json".to_owned());
    if !["json", "text", "verbose_json", "srt", "vtt"].contains(&format.as_str()) {
        return Err(Refusal::bad(format!(
            "response_format {format:?}: one of json, text, verbose_json, srt, vtt"
        )));
    }
    Ok((model, format))
}

fn too_large(limit: u64) -> Refusal {
    Refusal::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "file_too_large",
        format!("the file is over this gateway's limit of {limit} bytes (--max-upload)"),
    )
}

/// Reads the form, spooling the file; a refusal for a form that breaks a limit.
async fn read_form(
    gateway: &Gateway,
    body: Shared,
    boundary: String,
    form: &mut Form,
) -> Result<(), Refusal> {
    let stream = futures_util::stream::unfold(body, |body| async move {
        let next = body.lock().await.next().await;
        next.map(|chunk| (chunk, body))
    });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let broken = |e: multer::Error| Refusal::bad(format!("the multipart form cannot be read: {e}"));
    let mut fields = 0;
    while let Some(mut field) = multipart.next_field().await.map_err(broken)? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(Refusal::bad(format!(
                "the form has over {MAX_FIELDS} fields"
            )));
        }
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if form.file.is_some() {
                return Err(Refusal::bad(
                    "the form has two `file` fields: one file per request",
                ));
            }
            let file_name = safe_name(field.file_name().unwrap_or("upload"));
            let spool = gateway.spool.clone();
            let (guard, file) = tokio::task::spawn_blocking(move || spool.file(&file_name))
                .await
                .map_err(|e| internal(e.to_string()))?
                .map_err(|e| internal(format!("cannot spool the upload: {e}")))?;
            let spooled = spool_field(&mut field, file, gateway.max_upload).await;
            match spooled {
                Ok(size) => form.file = Some((guard, size)),
                Err(refusal) => {
                    guard.remove().await;
                    return Err(refusal);
                }
            }
            continue;
        }
        let mut text = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(broken)? {
            if text.len() + chunk.len() > FIELD_LIMIT {
                return Err(Refusal::bad(format!(
                    "the field {name:?} is over {FIELD_LIMIT} bytes"
                )));
            }
            text.extend_from_slice(&chunk);
        }
        let text = String::from_utf8(text)
            .map_err(|_| Refusal::bad(format!("the field {name:?} is not UTF-8")))?;
        match name.as_str() {
            "model" => form.model = Some(text.trim().to_owned()),
            "language" => form.language = Some(text.trim().to_owned()).filter(|l| !l.is_empty()),
            "response_format" => form.response_format = Some(text.trim().to_owned()),
            _ => {}
        }
    }
    Ok(())
}

/// Writes the file field to its spooled file; its size, or a refusal past `limit`.
async fn spool_field(
    field: &mut multer::Field<'_>,
    file: std::fs::File,
    limit: u64,
) -> Result<u64, Refusal> {
    let mut file = tokio::fs::File::from_std(file);
    let cannot = |e: std::io::Error| internal(format!("cannot spool the upload: {e}"));
    let mut size = 0u64;
    while let Some(chunk) = field
        .chunk()
        .await
        .map_err(|e| Refusal::bad(format!("the multipart form cannot be read: {e}")))?
    {
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large(limit));
        }
        file.write_all(&chunk).await.map_err(cannot)?;
    }
    file.flush().await.map_err(cannot)?;
    Ok(size)
}

fn internal(message: String) -> Refusal {
    Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

/// Reads and drops what is left of a refused body, up to [`DRAIN_LIMIT`].
async fn drain(body: &Shared) {
    let mut body = body.lock().await;
    let mut drained = 0u64;
    while let Some(Ok(chunk)) = body.next().await {
        drained += chunk.len() as u64;
        if drained > DRAIN_LIMIT {
            break;
        }
    }
}

/// Uploads the spooled file, runs the task, waits, and fetches the transcript.
async fn transcribe(
    client: &Client,
    model: &str,
    language: Option<String>,
    file: SpoolFile,
) -> dashscope_oss::Result<Value> {
    let uploaded = client.upload(model, UploadSource::path(file.path())).await;
    // Uploaded or not, the spooled copy is no longer needed.
    file.remove().await;
    let uploaded = uploaded?;
    let mut parameters = types::TranscriptionParameters::builder();
    if let Some(language) = language {
        parameters = parameters.language_hints(vec![language]);
    }
    let input = if model.contains("filetrans") {
        types::TranscriptionInput::builder().file_url(Some(uploaded.url.clone()))
    } else {
        types::TranscriptionInput::builder().file_urls(vec![uploaded.url.clone()])
    };
    let request: types::TranscriptionRequest = types::TranscriptionRequest::builder()
        .model(model.to_owned())
        .input(input)
        .parameters(parameters.try_into().ok())
        .try_into()?;
    let task = client.submit_transcription(&request).await?;
    let done = client.wait_task(&task.id, &WaitOptions::default()).await?;
    let mut files = client.transcriptions(&done).await;
    if files.is_empty() {
        return Err(dashscope_oss::Error::InvalidRequest(
            "the task succeeded with no transcript".to_owned(),
        ));
    }
    let transcript = files.swap_remove(0).result?;
    serde_json::to_value(&transcript)
        .map_err(|e| dashscope_oss::Error::InvalidRequest(e.to_string()))
}

/// One sentence of a transcript: start and end in seconds, and its text.
struct Segment {
    start: f64,
    end: f64,
    text: String,
}

fn segments(transcript: &Value) -> Vec<Segment> {
    let ms = |v: &Value, key: &str| v.get(key).and_then(Value::as_f64).unwrap_or(0.0) / 1000.0;
    transcript
        .get("transcripts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .flat_map(|t| {
            t.get("sentences")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .map(|s| Segment {
            start: ms(s, "begin_time"),
            end: ms(s, "end_time"),
            text: s
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

fn text_of(transcript: &Value) -> String {
    transcript
        .get("transcripts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("text").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The transcript in OpenAI's answer shape for `format`.
fn answer(format: &str, transcript: &Value) -> Response {
    let text = text_of(transcript);
    let plain =
        |body: String, kind: &'static str| ([(header::CONTENT_TYPE, kind)], body).into_response();
    match format {
        "text" => plain(format!("{text}\n"), "text/plain; charset=utf-8"),
        "srt" | "vtt" => plain(
            subtitles(format, &segments(transcript)),
            "text/plain; charset=utf-8",
        ),
        "verbose_json" => {
            let duration = transcript
                .pointer("/properties/original_duration_in_milliseconds")
                .and_then(Value::as_f64)
                .map_or(0.0, |ms| ms / 1000.0);
            let segments: Vec<Value> = segments(transcript)
                .iter()
                .enumerate()
                .map(|(id, s)| {
                    json!({"id": id, "seek": 0, "start": s.start, "end": s.end, "text": s.text,
                        "tokens": [], "temperature": 0.0, "avg_logprob": 0.0,
                        "compression_ratio": 0.0, "no_speech_prob": 0.0})
                })
                .collect();
            axum::Json(
                json!({"task": "transcribe", "language": "", "duration": duration,
                "text": text, "segments": segments}),
            )
            .into_response()
        }
        _ => axum::Json(json!({"text": text})).into_response(),
    }
}

/// SubRip (`00:00:01,000`) or WebVTT (`00:00:01.000`, after a `WEBVTT` line) cues.
fn subtitles(format: &str, segments: &[Segment]) -> String {
    let stamp = |secs: f64, sep: char| {
        let ms = (secs * 1000.0).round() as u64;
        format!(
            "{:02}:{:02}:{:02}{sep}{:03}",
            ms / 3_600_000,
            ms / 60_000 % 60,
            ms / 1000 % 60,
            ms % 1000
        )
    };
    let mut out = String::new();
    if format == "vtt" {
        out.push_str("WEBVTT\n\n");
    }
    let sep = if format == "vtt" { '.' } else { ',' };
    for (i, s) in segments.iter().enumerate() {
        if format == "srt" {
            out.push_str(&format!("{}\n", i + 1));
        }
        out.push_str(&format!(
            "{} --> {}\n{}\n\n",
            stamp(s.start, sep),
            stamp(s.end, sep),
            s.text
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_are_numbered_and_stamped() {
        let segments = [Segment {
            start: 61.5,
            end: 3723.004,
            text: "hi".to_owned(),
        }];
        assert_eq!(
            subtitles("srt", &segments),
            "1\n00:01:01,500 --> 01:02:03,004\nhi\n\n"
        );
        assert_eq!(
            subtitles("vtt", &segments),
            "WEBVTT\n\n00:01:01.500 --> 01:02:03.004\nhi\n\n"
        );
    }
}
