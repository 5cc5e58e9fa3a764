//! Human durations as written in playbooks: `250ms`, `30s`, `5m`, `1h30m`, `2d`.

use std::time::Duration;

/// Parses a human duration; the error says what was wrong, without position.
pub fn parse(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("empty duration; write e.g. `30s`, `5m` or `1h30m`".into());
    }
    let bytes = s.as_bytes();
    let mut total: u128 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if start == i {
            return Err(format!(
                "invalid duration `{text}`: expected a number at `{}`; write e.g. `30s`, `5m` or `1h30m`",
                &s[start..]
            ));
        }
        let number: u128 = s[start..i]
            .parse()
            .map_err(|_| format!("invalid duration `{text}`: number too large"))?;
        let unit_start = i;
        while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[unit_start..i];
        let millis: u128 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if i < bytes.len() => {
                let next = s[i..].chars().next().unwrap_or(' ');
                return Err(if next.is_whitespace() {
                    format!(
                        "invalid duration `{text}`: spaces are not allowed; write e.g. `30s`, `5m` or `1h30m`"
                    )
                } else {
                    format!(
                        "invalid duration `{text}`: unexpected `{next}` after `{number}`; write e.g. `30s`, `5m` or `1h30m`"
                    )
                });
            }
            "" => {
                return Err(format!(
                    "invalid duration `{text}`: missing unit after `{number}` (one of ms, s, m, h, d)"
                ));
            }
            other => {
                return Err(format!(
                    "invalid duration `{text}`: unknown unit `{other}` (one of ms, s, m, h, d)"
                ));
            }
        };
        total = total
            .checked_add(number.saturating_mul(millis))
            .ok_or_else(|| format!("invalid duration `{text}`: too large"))?;
    }
    // A year is far beyond any sane step or drill; larger values are typos.
    if total > 366 * 86_400_000 {
        return Err(format!("invalid duration `{text}`: longer than a year"));
    }
    Ok(Duration::from_millis(total as u64))
}

/// Formats a duration compactly for tables and messages: `250ms`, `1.2s`,
/// `3m04s`, `1h02m`, `2d03h`.
pub fn format(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1_000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms % 60_000) / 1000)
    } else if ms < 86_400_000 {
        format!("{}h{:02}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    } else {
        format!("{}d{:02}h", ms / 86_400_000, (ms % 86_400_000) / 3_600_000)
    }
}

/// Formats a span between two recorded times, in whole seconds and signed
/// (clocks disagree): `45s`, `-4m30s`, otherwise as [`format`].
pub fn format_seconds(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    if s < 60 {
        format!("{sign}{s}s")
    } else {
        format!("{sign}{}", format(Duration::from_secs(s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_units() {
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2d"), Ok(Duration::from_secs(172_800)));
    }

    #[test]
    fn formats_each_scale() {
        let f = |ms| format(Duration::from_millis(ms));
        assert_eq!(f(250), "250ms");
        assert_eq!(f(1_234), "1.2s");
        assert_eq!(f(184_000), "3m04s");
        assert_eq!(f(3_720_000), "1h02m");
        assert_eq!(f(183_600_000), "2d03h");
        assert_eq!(format_seconds(45), "45s");
        assert_eq!(format_seconds(-270), "-4m30s");
        assert_eq!(format_seconds(1_800), "30m00s");
        assert_eq!(format_seconds(183_600), "2d03h");
    }

    #[test]
    fn rejects_bad_input() {
        for bad in [
            "",
            "5",
            "5x",
            "m",
            "1h 30m",
            "-5s",
            "99999999999999999999999s",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
