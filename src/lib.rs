#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    unused_imports,
    irrefutable_let_patterns
)]
pub mod api;
mod client;
pub mod config;
pub mod error;
mod secret;

pub use client::Client;
pub use config::{Config, Region};
pub use error::{ApiError, DecodeError, Error, Result, Service};
pub use secret::Secret;
