//! Secrets: resolved before a run starts, and redacted from everything irctl writes.
//!
//! A [`Secret`] has a redacting `Debug` and no `Display`, so it cannot end up
//! in a log line by accident; the [`Redactor`] replaces every secret value —
//! and its encoded forms — with `***` in any text, and a [`Stream`] does the
//! same for output that arrives in pieces, so no piece ever shows part of one.
//! [`resolve`] refuses values too short or too common to redact safely.
//!
//! Where a value comes from is `source.rs` (the secrets file and the
//! environment); whether it is safe to mask is `strength.rs`; masking it is
//! `redact.rs`, over the encoded forms in `encoding.rs`.

use std::fmt;

mod encoding;
mod redact;
mod source;
mod strength;

pub use redact::{Redactor, Stream};
pub use source::{MAX_SECRETS_FILE_BYTES, parse_dotenv, resolve, resolve_optional};
pub use strength::{MIN_SECRET_CHARS, is_strong};

/// A secret value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value, for the one place that must use it (an env var, a header).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// The mask written in place of a secret.
pub const MASK: &str = "***";
