//! Which values are safe to treat as secrets: masking a value that is
//! short or an everyday word would shred unrelated text, so such values are
//! refused rather than masked.

/// Shortest secret value accepted.
pub const MIN_SECRET_CHARS: usize = 8;

/// Words that appear in ordinary output and records; a secret equal to one
/// (in any case) would mask them everywhere.
const COMMON_WORDS: &[&str] = &[
    "admin",
    "changeme",
    "default",
    "disabled",
    "enabled",
    "error",
    "escalate",
    "failed",
    "false",
    "letmein",
    "localhost",
    "none",
    "null",
    "ok",
    "passed",
    "passw0rd",
    "password",
    "qwerty",
    "resolved",
    "root",
    "running",
    "secret",
    "skipped",
    "status",
    "succeeded",
    "success",
    "test",
    "timeout",
    "trigger",
    "true",
    "unknown",
    "warning",
];

/// Whether `value` is long and unusual enough to be masked wherever it appears.
pub fn is_strong(value: &str) -> bool {
    weakness(value).is_none()
}

/// Why `value` cannot be a secret, if it cannot: redacting a value that is
/// short or an everyday word would shred unrelated text (`passed` becoming
/// `***ed`), and skipping it would leak it.
pub(super) fn weakness(value: &str) -> Option<String> {
    let chars = value.chars().count();
    if COMMON_WORDS
        .iter()
        .any(|w| w.eq_ignore_ascii_case(value.trim()))
    {
        return Some("a common word".into());
    }
    (chars < MIN_SECRET_CHARS)
        .then(|| format!("shorter than {MIN_SECRET_CHARS} characters ({chars})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_values_are_named() {
        assert_eq!(weakness("passed").as_deref(), Some("a common word"));
        assert_eq!(weakness("Status").as_deref(), Some("a common word"));
        assert_eq!(
            weakness("abc").as_deref(),
            Some("shorter than 8 characters (3)")
        );
        assert_eq!(weakness("s3cr3t-v4lue"), None);
    }
}
