//! The one lenient timestamp parser every incident format goes through.
//!
//! Sources disagree about RFC 3339: Alertmanager sends nanoseconds and local
//! offsets (`2024-01-01T10:00:00.123456789+02:00`), PagerDuty's Events API
//! documents `2015-07-17T08:42:58.315+0000` (no colon in the offset), and
//! people writing incident files by hand use a space instead of `T` or a
//! lowercase `z`. All of those are accepted; a timestamp without any offset
//! is not, because guessing its zone would shift the incident's timeline.

use chrono::{DateTime, Utc};

/// Parses `raw` into UTC, or `None` if it is not a timestamp this accepts:
/// RFC 3339 with `T`, `t` or a space between date and time, optional
/// fractional seconds, and an offset of `Z`, `z`, `±hh:mm` or `±hhmm`.
pub(super) fn parse(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    // Every accepted form is ASCII; checking first makes byte indexing safe.
    if !s.is_ascii() || s.len() < 20 {
        return None;
    }
    let mut t = s.to_string();
    if t.ends_with('z') {
        t.replace_range(t.len() - 1.., "Z");
    }
    // `+0000` → `+00:00`: a sign five from the end, past the date's dashes.
    let sign = t.len() - 5;
    if sign >= 19
        && matches!(t.as_bytes()[sign], b'+' | b'-')
        && t.as_bytes()[sign + 1..].iter().all(u8::is_ascii_digit)
    {
        t.insert(t.len() - 2, ':');
    }
    DateTime::parse_from_rfc3339(&t)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::parse;

    fn utc(raw: &str) -> String {
        match parse(raw) {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            None => format!("rejected {raw:?}"),
        }
    }

    #[test]
    fn accepts_strict_rfc3339() {
        assert_eq!(
            utc("2024-01-01T10:00:00Z"),
            "2024-01-01T10:00:00.000000000Z"
        );
        assert_eq!(
            utc("2024-01-01T10:00:00+02:00"),
            "2024-01-01T08:00:00.000000000Z"
        );
    }

    #[test]
    fn accepts_alertmanager_nanoseconds_with_offset() {
        assert_eq!(
            utc("2024-01-01T10:00:00.123456789+02:00"),
            "2024-01-01T08:00:00.123456789Z"
        );
    }

    #[test]
    fn accepts_pagerduty_offset_without_colon() {
        assert_eq!(
            utc("2015-07-17T08:42:58.315+0000"),
            "2015-07-17T08:42:58.315000000Z"
        );
        assert_eq!(
            utc("2015-07-17T08:42:58-0130"),
            "2015-07-17T10:12:58.000000000Z"
        );
    }

    #[test]
    fn accepts_space_separator_and_lowercase_z() {
        assert_eq!(
            utc("2024-03-05 14:02:11Z"),
            "2024-03-05T14:02:11.000000000Z"
        );
        assert_eq!(
            utc(" 2024-03-05t14:02:11z "),
            "2024-03-05T14:02:11.000000000Z"
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "yesterday",
            "2024-01-01",
            "2024-01-01T10:00:00",
            "2024-13-01T10:00:00Z",
            "2024-01-01T10:00:00+2500",
            "2024-01-01T10:00:00 UTC",
            "１２３４-01-01T10:00:00Z",
            "1704103200",
        ] {
            assert!(parse(bad).is_none(), "{bad:?} was accepted");
        }
    }
}
