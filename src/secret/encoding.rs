//! The forms a secret value can take in text irctl writes (URL, base64,
//! hex, shell and JSON encodings), so the [`super::Redactor`] masks each of
//! them, not just the value as it is.

use base64::Engine as _;

/// The forms in which `v` may appear in text irctl writes: as it is, URL-
/// and form-encoded, base64 (padded or not, standard or URL alphabet), hex
/// (either case), shell-quoted, and escaped inside a JSON string (as serde
/// writes it, and as the templates' `tojson` writes it, which also escapes
/// `'<>&`). Base64 inside a longer encoded text is [`base64_cores`].
pub(super) fn forms(v: &str) -> Vec<String> {
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
        hex(v.as_bytes(), false),
        hex(v.as_bytes(), true),
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

fn hex(bytes: &[u8], upper: bool) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = if upper {
            write!(out, "{b:02X}")
        } else {
            write!(out, "{b:02x}")
        };
        out
    })
}

/// The base64 characters that depend on `v` alone, at each of the three
/// byte offsets `v` can have in the encoded text (standard and URL
/// alphabet). They find `v` inside any base64 text — above all the Basic
/// auth form `base64(user:secret)`, whatever the user — without knowing
/// what surrounds it; a match is then widened by up to [`WIDEN`] base64
/// characters each side, so the characters shared with the neighbouring
/// bytes (and any padding) go too.
pub(super) fn base64_cores(v: &str) -> Vec<String> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let n = v.len();
    let mut out = Vec::new();
    for k in 0..3 {
        let mut bytes = vec![0u8; k];
        bytes.extend_from_slice(v.as_bytes());
        // Character i holds bits 6i..6i+6; the secret holds 8k..8(k+n).
        let first = (8 * k).div_ceil(6);
        let end = (8 * (k + n)) / 6;
        if end <= first {
            continue;
        }
        for engine in [&STANDARD_NO_PAD, &URL_SAFE_NO_PAD] {
            let encoded = engine.encode(&bytes);
            if let Some(core) = encoded.get(first..end) {
                out.push(core.to_string());
            }
        }
    }
    out
}

/// Most characters a base64 core match widens by on each side: the one
/// shared with a neighbouring byte, and up to two `=` of padding.
pub(super) const WIDEN: usize = 3;

/// Whether `b` can be part of a base64 word (either alphabet, or padding).
pub(super) fn is_base64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'-' | b'_' | b'=')
}
