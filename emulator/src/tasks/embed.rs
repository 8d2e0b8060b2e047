//! Multimodal embedding: each item resolved like a model call's media, one vector per item of
//! the model's documented dimension, derived from what was received (so the same input embeds
//! the same) and of unit length (so a cosine is a dot product, as with the service's vectors).
//!
//! The sizes, from the multimodal embedding API reference and its model table:
//! `multimodal-embedding-v1` 1,024; `tongyi-embedding-vision-plus` 1,152;
//! `tongyi-embedding-vision-flash` 768; `qwen3-vl-embedding` 2,560 by default, and
//! `parameters.dimension` (the field the SDK 2.0.2 sends `dimension=` as) one of 2,560, 2,048,
//! 1,536, 1,024, 768, 512, 256. Dated snapshots (`…-2026-03-06`) are their family. Where the
//! documentation is silent the emulator decides: a `dimension` that is not one the model
//! documents is 400 `InvalidParameter` (for a model of one size, only that size is accepted),
//! and a model outside this table embeds as `multimodal-embedding-v1` does.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{header_is, open_call};
use crate::api::{Api, ApiError, INVALID_PARAMETER, MediaRef, error, resolve_medium};
use crate::state::State;

/// The dimensions a model documents: its default first.
fn dimensions_of(model: &str) -> &'static [usize] {
    const TABLE: &[(&str, &[usize])] = &[
        ("multimodal-embedding-v1", &[1024]),
        ("tongyi-embedding-vision-plus", &[1152]),
        ("tongyi-embedding-vision-flash", &[768]),
        (
            "qwen3-vl-embedding",
            &[2560, 2048, 1536, 1024, 768, 512, 256],
        ),
    ];
    TABLE
        .iter()
        .find(|(family, _)| model.starts_with(family))
        .map_or(&[1024], |(_, sizes)| sizes)
}

/// The dimension a request gets: its `parameters.dimension` if the model documents it.
fn dimension(model: &str, request: &Value) -> Result<usize, ApiError> {
    let sizes = dimensions_of(model);
    let Some(asked) = request.pointer("/parameters/dimension") else {
        return Ok(sizes[0]);
    };
    asked
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| sizes.contains(n))
        .ok_or_else(|| {
            let listed: Vec<String> = sizes.iter().map(usize::to_string).collect();
            error(
                400,
                "InvalidParameter",
                format!(
                    "parameters.dimension must be one of {} for {model}",
                    listed.join(", ")
                ),
            )
        })
}

/// A unit vector of `size` numbers drawn from the digests of `seed`.
fn vector(seed: &str, size: usize) -> Vec<f64> {
    let mut raw = Vec::with_capacity(size);
    let mut block = 0u64;
    while raw.len() < size {
        let mut input = seed.as_bytes().to_vec();
        input.extend_from_slice(&block.to_le_bytes());
        let digest = ring::digest::digest(&ring::digest::SHA256, &input);
        raw.extend(
            digest
                .as_ref()
                .iter()
                .take(size - raw.len())
                .map(|b| (f64::from(*b) - 127.5) / 127.5),
        );
        block += 1;
    }
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        raw.iter_mut().for_each(|x| *x /= norm);
    }
    raw
}

pub(super) async fn embed(
    AxState(state): AxState<Arc<State>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = state.request_id();
    let answered = (|| {
        let (account, model, accepts, request) = open_call(
            &state,
            &headers,
            &body,
            crate::catalogue::Endpoint::Embedding,
        )?;
        let resolve = header_is(&headers, "x-dashscope-ossresourceresolve", "enable");
        let contents = request
            .pointer("/input/contents")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| error(400, "InvalidParameter", INVALID_PARAMETER))?;
        let size = dimension(&model, &request)?;
        let mut embeddings = Vec::new();
        for (index, item) in contents.iter().enumerate() {
            let (kind, seed) = if let Some(text) = item.get("text").and_then(Value::as_str) {
                ("text", text.to_owned())
            } else if let Some((kind, url)) = ["image", "video", "audio"]
                .iter()
                .find_map(|k| item.get(*k).and_then(Value::as_str).map(|u| (*k, u)))
            {
                let described = resolve_medium(
                    &state,
                    account,
                    &model,
                    &accepts,
                    &MediaRef {
                        url: url.to_owned(),
                    },
                    resolve,
                )?;
                (kind, described.summary)
            } else {
                return Err(error(400, "InvalidParameter", INVALID_PARAMETER));
            };
            embeddings
                .push(json!({"index": index, "embedding": vector(&seed, size), "type": kind}));
        }
        Ok(json!({"output": {"embeddings": embeddings}, "usage": {"input_tokens": contents.len()}}))
    })();
    match answered {
        Ok(mut body) => {
            body["request_id"] = json!(request_id);
            axum::Json(body).into_response()
        }
        Err(e) => e.render(Api::Native, &request_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_and_of_the_asked_size() {
        for size in [256, 768, 1024, 1152, 2560] {
            let v = vector("a cat", size);
            assert_eq!(v.len(), size);
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-9, "{size}: {norm}");
        }
        assert_eq!(vector("a cat", 768), vector("a cat", 768));
        assert_ne!(vector("a cat", 768), vector("a dog", 768));
    }

    #[test]
    fn each_family_has_its_documented_sizes() {
        let asked = |model: &str, dimension: Option<u64>| {
            let request = match dimension {
                Some(d) => json!({"parameters": {"dimension": d}}),
                None => json!({}),
            };
            super::dimension(model, &request).ok()
        };
        assert_eq!(asked("multimodal-embedding-v1", None), Some(1024));
        assert_eq!(asked("tongyi-embedding-vision-plus", None), Some(1152));
        assert_eq!(
            asked("tongyi-embedding-vision-flash-2026-03-06", None),
            Some(768)
        );
        assert_eq!(asked("qwen3-vl-embedding", None), Some(2560));
        assert_eq!(asked("qwen3-vl-embedding", Some(512)), Some(512));
        assert_eq!(asked("qwen3-vl-embedding", Some(500)), None);
        assert_eq!(asked("multimodal-embedding-v1", Some(1024)), Some(1024));
        assert_eq!(asked("multimodal-embedding-v1", Some(512)), None);
    }
}
