//! How often, and how many at once, one playbook may run across every
//! incident: `once_within: 30m`, `max_runs: 3 per 1h` and `concurrency: 2`.
//!
//! A flapping fleet fires the same alert for forty hosts an hour; each is
//! its own incident, so the per-episode repeat rule lets every one through.
//! These limits hold per playbook instead. They are written here as checked
//! values; [`crate::lifecycle::throttle`] enforces them.

use std::fmt;
use std::time::Duration;

/// The longest window a throttle may count over; the run log it reads keeps
/// no more than this.
pub const MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);
/// The most runs `max_runs` or `concurrency` may allow.
pub const MAX_COUNT: u32 = 10_000;

/// A playbook's limits; all absent by default (no limit).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// At most one run per this window (`once_within`).
    pub once_within: Option<Duration>,
    /// At most `runs` runs per window (`max_runs`).
    pub max_runs: Option<MaxRuns>,
    /// At most this many runs at once (`concurrency`).
    pub concurrency: Option<u32>,
}

impl Limits {
    /// Whether `once_within` or `max_runs` is set.
    pub fn throttles(&self) -> bool {
        self.once_within.is_some() || self.max_runs.is_some()
    }

    /// The longest window a throttle counts over.
    pub fn window(&self) -> Option<Duration> {
        let max_runs = self.max_runs.map(|m| m.per);
        self.once_within.max(max_runs)
    }
}

/// `max_runs: N per DURATION`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxRuns {
    /// `N`.
    pub runs: u32,
    /// `DURATION`.
    pub per: Duration,
}

impl MaxRuns {
    /// Parses `N per DURATION` strictly (a positive whole number, the word
    /// `per`, a positive duration of at most 30 days); the error says what
    /// is wrong, without position.
    pub fn parse(text: &str) -> Result<MaxRuns, String> {
        const FORM: &str = "write `N per DURATION`, e.g. `3 per 1h`";
        let words: Vec<&str> = text.split_whitespace().collect();
        let [n, per, window] = words.as_slice() else {
            return Err(format!("invalid `max_runs` `{text}`: {FORM}"));
        };
        if *per != "per" {
            return Err(format!(
                "invalid `max_runs` `{text}`: expected `per` after the number, found `{per}`; {FORM}"
            ));
        }
        if !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "invalid `max_runs` `{text}`: `{n}` is not a whole number; {FORM}"
            ));
        }
        let runs: u32 = n
            .parse()
            .ok()
            .filter(|r| (1..=MAX_COUNT).contains(r))
            .ok_or_else(|| {
                format!("invalid `max_runs` `{text}`: the number of runs must be 1 to {MAX_COUNT}")
            })?;
        let per = window_of("max_runs", window)?;
        Ok(MaxRuns { runs, per })
    }
}

impl fmt::Display for MaxRuns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} per {}", self.runs, show(self.per))
    }
}

/// A window as a playbook would write it: `30m`, `1h`, `1h30m`, `90s`.
pub fn show(d: Duration) -> String {
    let mut ms = d.as_millis();
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ] {
        if ms >= size {
            out.push_str(&format!("{}{unit}", ms / size));
            ms %= size;
        }
    }
    if ms > 0 || out.is_empty() {
        out.push_str(&format!("{ms}ms"));
    }
    out
}

/// A throttle window: a duration above zero and at most [`MAX_WINDOW`].
pub fn window_of(field: &str, text: &str) -> Result<Duration, String> {
    let d = crate::duration::parse(text).map_err(|e| format!("`{field}`: {e}"))?;
    if d.is_zero() {
        return Err(format!(
            "`{field}`: the window `{}` is empty; a throttle needs a window above zero",
            text.trim()
        ));
    }
    if d > MAX_WINDOW {
        return Err(format!(
            "`{field}`: the window `{}` is longer than 30 days",
            text.trim()
        ));
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_runs_reads_only_the_strict_form() {
        assert_eq!(
            MaxRuns::parse("3 per 1h"),
            Ok(MaxRuns {
                runs: 3,
                per: Duration::from_secs(3600)
            })
        );
        assert_eq!(
            MaxRuns::parse("  10   per 90m ").map(|m| m.to_string()),
            Ok("10 per 1h30m".to_string())
        );
        assert_eq!(show(Duration::from_secs(1800)), "30m");
        assert_eq!(show(Duration::from_millis(86_401_500)), "1d1s500ms");
        for bad in [
            "",
            "3",
            "3 per",
            "3/1h",
            "3 in 1h",
            "0 per 1h",
            "-1 per 1h",
            "3 per 0s",
            "3 per 1x",
            "3 per 1h extra",
            "1.5 per 1h",
            "3 per 31d",
            "99999999999 per 1h",
        ] {
            assert!(MaxRuns::parse(bad).is_err(), "{bad:?} was accepted");
        }
        let e = MaxRuns::parse("3 per 0s").unwrap_err();
        assert!(e.contains("above zero"), "{e}");
        let e = MaxRuns::parse("3 each 1h").unwrap_err();
        assert!(e.contains("expected `per`"), "{e}");
    }
}
