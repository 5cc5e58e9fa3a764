//! Secrets: resolved before a run starts, and redacted from everything irctl writes.
//!
//! A [`Secret`] has a redacting `Debug` and no `Display`, so it cannot end up
//! in a log line by accident; the [`Redactor`] replaces every secret value —
//! and its URL-encoded and base64 forms — with `***` in any text.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

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

/// Replaces secret values in text.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// Builds a redactor for `secrets`, including their encoded forms.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut needles = Vec::new();
        for s in secrets {
            let v = s.expose();
            // Very short values would shred unrelated text; they are still
            // never printed deliberately, but are not pattern-replaced.
            if v.len() < 4 {
                continue;
            }
            needles.push(v.to_string());
            needles.push(crate::template::url_component(v));
            needles.push(
                percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC)
                    .to_string(),
            );
            needles.push(base64::engine::general_purpose::STANDARD.encode(v));
            needles.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v));
            needles.push(base64::engine::general_purpose::STANDARD_NO_PAD.encode(v));
            needles.push(crate::template::shell_quote(v));
            if let Ok(json) = serde_json::to_string(v) {
                needles.push(json.trim_matches('"').to_string());
            }
        }
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Redactor { needles }
    }

    /// Whether there is anything to redact.
    pub fn is_empty(&self) -> bool {
        self.needles.is_empty()
    }

    /// `text` with every secret form replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), MASK);
            }
        }
        out
    }

    /// Redacts every string (and key) inside a JSON value.
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        if self.is_empty() {
            return value.clone();
        }
        match value {
            J::String(s) => J::String(self.redact(s)),
            J::Array(items) => J::Array(items.iter().map(|v| self.redact_json(v)).collect()),
            J::Object(map) => J::Object(
                map.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Parses a dotenv file: `NAME=value`, `export NAME=value`, quotes, `#` comments.
pub fn parse_dotenv(text: &str, origin: &str) -> anyhow::Result<BTreeMap<String, Secret>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once('=') else {
            anyhow::bail!("`{origin}` line {}: expected `NAME=value`", i + 1);
        };
        let k = k.trim();
        if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            anyhow::bail!("`{origin}` line {}: invalid name `{k}`", i + 1);
        }
        let v = v.trim();
        let v = if v.len() >= 2
            && ((v.starts_with('"') && v.ends_with('"'))
                || (v.starts_with('\'') && v.ends_with('\'')))
        {
            &v[1..v.len() - 1]
        } else {
            v
        };
        out.insert(k.to_string(), Secret::new(v));
    }
    Ok(out)
}

/// Resolves each declared name from the secrets file, then `IRCTL_SECRET_NAME`, then `NAME`.
/// Returns the missing names as an error before anything runs.
pub fn resolve(names: &[String], file: Option<&Path>) -> anyhow::Result<BTreeMap<String, Secret>> {
    let from_file = match file {
        Some(path) => {
            let text = crate::capped::read_to_string(path, MAX_SECRETS_FILE_BYTES)
                .with_context(|| format!("cannot read secrets file `{}`", path.display()))?;
            parse_dotenv(&text, &path.display().to_string())?
        }
        None => BTreeMap::new(),
    };
    let mut out = BTreeMap::new();
    let mut missing = Vec::new();
    for name in names {
        let value = from_file
            .get(name)
            .cloned()
            .or_else(|| crate::env::secret(name).map(Secret::new));
        match value {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None => missing.push(name.as_str()),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "missing secret{} {}: set them in `--secrets-file`, or as `IRCTL_SECRET_<NAME>` or `<NAME>` in the environment",
            if missing.len() == 1 { "" } else { "s" },
            missing
                .iter()
                .map(|m| format!("`{m}`"))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(out)
}

/// Largest secrets file read: a dotenv file of a few secrets is far smaller.
pub const MAX_SECRETS_FILE_BYTES: u64 = 1024 * 1024;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_encoded_forms() {
        let s = Secret::new("hunter2/with space");
        let r = Redactor::new([&s]);
        assert_eq!(r.redact("a hunter2/with space b"), "a *** b");
        assert_eq!(r.redact("u=hunter2%2Fwith%20space"), "u=***");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2/with space");
        assert_eq!(r.redact(&b64), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }
}
