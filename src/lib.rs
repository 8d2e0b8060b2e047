#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

/// The examples of `docs/guide.md` and `docs/emulator.md`, compiled as doctests so that the
/// documentation cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../docs/guide.md")]
#[doc = include_str!("../docs/emulator.md")]
pub struct DocsExamples;

#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    unused_imports,
    irrefutable_let_patterns
)]
pub mod api;
mod attempt;
mod budget;
pub mod cache;
pub mod chat;
mod client;
pub mod config;
pub mod error;
mod forward;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod media;
mod naming;
mod region;
mod report;
mod retry;
mod secret;
mod session;
mod sse;
pub mod task;
mod timefmt;
mod transport;
pub mod upload;
mod wire;

pub use client::{Client, install_crypto_provider};
pub use config::{Config, Region};
pub use error::{ApiError, DecodeError, Error, Result, Service, Throttle};
pub use forward::RawRequest;
pub use report::{Callback, MediaOrigin, Progress, Transfer, UploadEvent, UploadedFile};
pub use retry::RetryPolicy;
pub use secret::Secret;
pub use upload::{StopUploads, UploadBatch, UploadSource};
pub use wire::{Media, OSS_RESOLVE_HEADER};
