//! Secrets: resolved before a run starts, and redacted from everything irctl writes.
//!
//! A [`Secret`] has a redacting `Debug` and no `Display`, so it cannot end up
//! in a log line by accident; the [`Redactor`] replaces every secret value —
//! and its URL-encoded and base64 forms — with `***` in any text.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use aho_corasick::{AhoCorasick, MatchKind};
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
///
/// Every form of every secret is one pattern of a single Aho-Corasick
/// automaton, so a text is scanned once however many secrets and forms there
/// are. All matches are found, overlapping ones included, and overlapping
/// matches are masked as one span: when two secrets overlap in a text (or one
/// is a prefix of another) neither leaves a visible tail.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// `None` when there is nothing to redact.
    matcher: Option<Matcher>,
}

#[derive(Clone, Debug)]
enum Matcher {
    /// The automaton over every secret form.
    Forms(AhoCorasick),
    /// The automaton could not be built (only for gigabytes of secrets):
    /// fail closed and mask any non-empty text whole.
    Everything,
}

/// The forms in which `v` may appear in text irctl writes: as it is, URL-
/// and form-encoded, base64 (padded or not, standard or URL alphabet),
/// shell-quoted, and escaped inside a JSON string (as serde writes it, and
/// as the templates' `tojson` writes it, which also escapes `'<>&`).
fn forms(v: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let mut out = vec![
        v.to_string(),
        crate::template::url_component(v),
        percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string(),
        url::form_urlencoded::byte_serialize(v.as_bytes()).collect(),
        STANDARD.encode(v),
        STANDARD_NO_PAD.encode(v),
        URL_SAFE.encode(v),
        URL_SAFE_NO_PAD.encode(v),
        crate::template::shell_quote(v),
    ];
    // Exactly one quote off each end: a value may itself end in `"`.
    if let Some(json) = serde_json::to_string(v)
        .ok()
        .as_deref()
        .and_then(|j| j.strip_prefix('"')?.strip_suffix('"'))
    {
        out.push(
            json.replace('\'', "\\u0027")
                .replace('<', "\\u003c")
                .replace('>', "\\u003e")
                .replace('&', "\\u0026"),
        );
        out.push(json.to_string());
    }
    out
}

impl Redactor {
    /// Builds a redactor for `secrets`, including their encoded forms.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        let mut needles: Vec<String> = secrets
            .into_iter()
            .map(Secret::expose)
            // Very short values would shred unrelated text; they are still
            // never printed deliberately, but are not pattern-replaced.
            .filter(|v| v.len() >= 4)
            .flat_map(forms)
            .collect();
        if needles.is_empty() {
            return Redactor::default();
        }
        needles.sort_unstable();
        needles.dedup();
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(&needles)
            .map_or(Matcher::Everything, Matcher::Forms);
        Redactor {
            matcher: Some(matcher),
        }
    }

    /// Whether there is anything to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret form replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        let ac = match &self.matcher {
            None => return text.to_string(),
            Some(Matcher::Everything) if text.is_empty() => return String::new(),
            Some(Matcher::Everything) => return MASK.to_string(),
            Some(Matcher::Forms(ac)) => ac,
        };
        let mut spans: Vec<(usize, usize)> = ac
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        spans.sort_unstable();
        let mut spans = spans.into_iter();
        let Some((mut start, mut end)) = spans.next() else {
            return text.to_string();
        };
        // Matches of UTF-8 needles in UTF-8 text start and end on character
        // boundaries, so every slice below is valid.
        let mut out = String::with_capacity(text.len());
        let mut copied = 0;
        for (s, e) in spans {
            if s < end {
                end = end.max(e);
                continue;
            }
            out.push_str(&text[copied..start]);
            out.push_str(MASK);
            copied = end;
            (start, end) = (s, e);
        }
        out.push_str(&text[copied..start]);
        out.push_str(MASK);
        out.push_str(&text[end..]);
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
/// Returns the missing names as an error before anything runs; a secret
/// set to the empty string anywhere is missing there, and the error says where.
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
        let mut empty = Vec::new();
        let value = match from_file.get(name) {
            Some(v) if v.expose().is_empty() => {
                if let Some(path) = file {
                    empty.push(format!("`{}`", path.display()));
                }
                None
            }
            other => other.cloned(),
        }
        .or_else(|| crate::env::secret(name, &mut empty).map(Secret::new));
        match value {
            Some(v) => {
                out.insert(name.clone(), v);
            }
            None if empty.is_empty() => missing.push(format!("`{name}`")),
            None => missing.push(format!("`{name}` (empty in {})", empty.join(", "))),
        }
    }
    if !missing.is_empty() {
        anyhow::bail!(
            "missing secret{} {}: set them in `--secrets-file`, or as `IRCTL_SECRET_<NAME>` or `<NAME>` in the environment",
            if missing.len() == 1 { "" } else { "s" },
            missing.join(", ")
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

    #[test]
    fn redacts_every_form_in_one_text() {
        let s = Secret::new("a b+c/d'<x>\"");
        let r = Redactor::new([&s]);
        let text = [
            "a b+c/d'<x>\"".to_string(),
            "a%20b%2Bc%2Fd%27%3Cx%3E%22".to_string(),
            "a+b%2Bc%2Fd%27%3Cx%3E%22".to_string(),
            base64::engine::general_purpose::STANDARD.encode("a b+c/d'<x>\""),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("a b+c/d'<x>\""),
            crate::template::shell_quote("a b+c/d'<x>\""),
            r#"a b+c/d'<x>\""#.to_string(),
            r#"a b+c/d\u0027\u003cx\u003e\""#.to_string(),
        ]
        .join(" | ");
        assert_eq!(r.redact(&text), ["***"; 8].join(" | "));
    }

    #[test]
    fn overlapping_secrets_leave_no_tail() {
        let a = Secret::new("abcdef12");
        let b = Secret::new("ef12ghij");
        let r = Redactor::new([&a, &b]);
        assert_eq!(r.redact("x abcdef12ghij y"), "x *** y");
        assert_eq!(r.redact("x ef12ghij abcdef12 y"), "x *** *** y");
        // A chain of overlaps is one span, however it is entered.
        assert_eq!(r.redact("abcdef12ghij abcdef12ghij"), "*** ***");
    }

    #[test]
    fn a_secret_that_is_a_prefix_of_another_hides_the_longer_whole() {
        let short = Secret::new("token1234");
        let long = Secret::new("token1234567");
        for r in [
            Redactor::new([&short, &long]),
            Redactor::new([&long, &short]),
        ] {
            assert_eq!(r.redact("a token1234567 b"), "a *** b");
            assert_eq!(r.redact("a token1234 b"), "a *** b");
            assert_eq!(r.redact("token1234token1234567"), "******");
        }
    }

    #[test]
    fn unicode_short_and_absent_secrets() {
        let s = Secret::new("pässwörd");
        let r = Redactor::new([&s, &Secret::new("abc")]);
        assert_eq!(r.redact("é pässwörd ü abc"), "é *** ü abc");
        assert_eq!(r.redact("nothing here"), "nothing here");
        let none = Redactor::new([&Secret::new("abc")]);
        assert!(none.is_empty());
        assert_eq!(none.redact("abc"), "abc");
        assert!(Redactor::default().is_empty());
    }
}
