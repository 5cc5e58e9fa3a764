//! Anchoring the hash chain: which scheme an event's `hash` uses, the keyed
//! scheme's key, and how a final hash is shown and compared.
//!
//! A plain chain (SHA-256 over the previous hash and the event) proves that
//! nothing changed *unless* whoever changed it recomputed the hashes, which
//! anyone who can write the state directory can do. Two anchors close that:
//! a keyed chain — HMAC-SHA256 under a key held outside the state directory
//! (the secret [`KEY_SECRET`]) — which nobody without the key can extend or
//! rewrite, and the final hash, printed at the end of a run and sent with
//! notifications, which a rewritten chain no longer ends in.
//!
//! The scheme is in the hash itself: a plain hash is bare hex, as every
//! earlier release wrote it, so old timelines read and verify byte for byte;
//! a keyed hash is `hmac-sha256:<hex>`. Each link covers the previous hash
//! with its prefix, so a keyed tail also anchors the plain events before it
//! (a run resumed after a key was set).

use std::fmt;

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

use crate::secret::Secret;

/// The secret that holds the timeline key: `IRCTL_TIMELINE_KEY` (or
/// `IRCTL_SECRET_IRCTL_TIMELINE_KEY`) in the environment, or the secrets file.
pub const KEY_SECRET: &str = "IRCTL_TIMELINE_KEY";

/// The prefix of a keyed hash.
pub const KEYED_PREFIX: &str = "hmac-sha256:";

/// The prefix a plain hash is shown with (it is written bare).
pub const PLAIN_PREFIX: &str = "sha256:";

/// Fewest characters a timeline key may have: a short key could be found by
/// trying keys against the timeline itself, offline.
pub const MIN_KEY_CHARS: usize = 16;

/// The key of a keyed chain.
#[derive(Clone, Debug)]
pub struct ChainKey(Secret);

impl ChainKey {
    /// The key held in `secret`, refused when it is too short to resist guessing.
    pub fn new(secret: Secret) -> anyhow::Result<ChainKey> {
        let chars = secret.expose().chars().count();
        if chars < MIN_KEY_CHARS {
            anyhow::bail!(
                "the timeline key `{KEY_SECRET}` is {chars} characters long; use at least {MIN_KEY_CHARS} random characters (e.g. `openssl rand -hex 32`)"
            );
        }
        Ok(ChainKey(secret))
    }

    /// The key as a secret, for redaction.
    pub fn secret(&self) -> &Secret {
        &self.0
    }
}

/// How an event's hash was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// SHA-256, no key: bare hex.
    Plain,
    /// HMAC-SHA256 under the timeline key: `hmac-sha256:<hex>`.
    Keyed,
}

impl Scheme {
    /// The scheme `hash` was written with.
    pub fn of(hash: &str) -> Scheme {
        if hash.starts_with(KEYED_PREFIX) {
            Scheme::Keyed
        } else {
            Scheme::Plain
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Plain => "sha256",
            Scheme::Keyed => "hmac-sha256",
        })
    }
}

/// The link after `prev` over `canonical` (an event's canonical JSON):
/// plain without a key, keyed with one.
pub(super) fn link(prev: &str, canonical: &[u8], key: Option<&ChainKey>) -> String {
    match key {
        None => {
            let mut h = Sha256::new();
            h.update(prev.as_bytes());
            h.update(b"\n");
            h.update(canonical);
            hex::encode(h.finalize())
        }
        Some(key) => {
            // HMAC takes keys of any length; this cannot fail.
            let mut mac = match Hmac::<Sha256>::new_from_slice(key.0.expose().as_bytes()) {
                Ok(mac) => mac,
                Err(_) => return String::new(),
            };
            mac.update(prev.as_bytes());
            mac.update(b"\n");
            mac.update(canonical);
            format!("{KEYED_PREFIX}{}", hex::encode(mac.finalize().into_bytes()))
        }
    }
}

/// A chain hash as people see it: the scheme, a colon, the hex
/// (`sha256:…` or `hmac-sha256:…`); empty for an empty chain.
pub fn display(hash: &str) -> String {
    match Scheme::of(hash) {
        _ if hash.is_empty() => String::new(),
        Scheme::Keyed => hash.to_string(),
        Scheme::Plain => format!("{PLAIN_PREFIX}{hash}"),
    }
}

/// Whether `expected` (as [`display`] shows it, or its bare hex) names
/// `hash`. Case-insensitive, surrounding blanks ignored: it was copied from
/// a chat message or a log.
pub fn matches(hash: &str, expected: &str) -> bool {
    let expected = expected.trim().to_ascii_lowercase();
    if hash.is_empty() || expected.is_empty() {
        return false;
    }
    let shown = display(hash);
    let hex = shown.split_once(':').map_or(shown.as_str(), |(_, h)| h);
    expected == shown || expected == hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scheme_is_in_the_hash_and_shown_with_it() {
        let plain = link("", b"{}", None);
        assert_eq!(plain.len(), 64);
        assert_eq!(Scheme::of(&plain), Scheme::Plain);
        let key = ChainKey::new(Secret::new("0123456789abcdef0123")).unwrap();
        let keyed = link("", b"{}", Some(&key));
        assert_eq!(Scheme::of(&keyed), Scheme::Keyed);
        assert_ne!(keyed.trim_start_matches(KEYED_PREFIX), plain);
        assert_eq!(display(&plain), format!("sha256:{plain}"));
        assert_eq!(display(&keyed), keyed);
        assert!(matches(&plain, &format!(" SHA256:{plain}\n")));
        assert!(matches(&plain, &plain));
        assert!(matches(&keyed, &keyed));
        assert!(!matches(&keyed, &format!("sha256:{plain}")));
        assert!(!matches(&plain, ""));
        assert!(!matches(&plain, "sha256:"));
    }

    #[test]
    fn a_short_key_is_refused() {
        let e = ChainKey::new(Secret::new("short-key")).unwrap_err();
        assert!(e.to_string().contains("at least 16"), "{e}");
    }
}
