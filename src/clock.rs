//! The one clock: the system's, or a fixed time for tests and reproducible
//! reports.
//!
//! Library code never asks the system for the time where it stamps a
//! record: it is handed a [`Clock`] (the engine in `RunOptions::clock`, a
//! postmortem's "generated at", `--since`), so a test can fix it.
//!
//! `IRCTL_NOW` (RFC 3339) fixes the clock of the commands that ask for the
//! current time: drills' `--due` decisions and record, `--since`, `--at`
//! checks, "generated at". It is parsed here and nowhere else, and a bad
//! value is one clear error. The CLI gives the engine [`Clock::System`]
//! whatever `IRCTL_NOW` says: a timeline records what really happened.

use chrono::{DateTime, Utc};

/// Where the current time comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// Always the same instant.
    Fixed(DateTime<Utc>),
}

/// A fixed time that is not RFC 3339.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid {origin} `{value}`: expected an RFC 3339 time such as `2026-03-02T10:30:00Z` ({reason})"
)]
pub struct InvalidNow {
    /// Where the text came from (`IRCTL_NOW`, `--now`), for the message.
    pub origin: String,
    /// The text as given.
    pub value: String,
    /// What the parser objected to.
    pub reason: String,
}

impl Clock {
    /// The clock `IRCTL_NOW` asks for: fixed at its time when set, else the system's.
    pub fn from_env() -> Result<Clock, InvalidNow> {
        match crate::env::now() {
            Some(text) => Clock::fixed_at(&text, crate::env::NOW),
            None => Ok(Clock::System),
        }
    }

    /// A clock fixed at `text` (RFC 3339); `origin` names where the text came from.
    pub fn fixed_at(text: &str, origin: &str) -> Result<Clock, InvalidNow> {
        DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Clock::Fixed(t.with_timezone(&Utc)))
            .map_err(|e| InvalidNow {
                origin: format!("`{origin}`"),
                value: text.to_string(),
                reason: e.to_string(),
            })
    }

    /// The current time by this clock.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Fixed(t) => *t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_stands_still_in_utc() {
        let clock = Clock::fixed_at(" 2026-03-02T11:30:00+01:00 ", "IRCTL_NOW").unwrap();
        let expected = DateTime::parse_from_rfc3339("2026-03-02T10:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(clock, Clock::Fixed(expected));
        assert_eq!(clock.now(), clock.now());
    }

    #[test]
    fn a_bad_time_names_its_origin_and_the_expected_form() {
        let err = Clock::fixed_at("yesterday", "--now").unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("invalid `--now` `yesterday`: expected an RFC 3339 time"),
            "{msg}"
        );
    }

    #[test]
    fn the_system_clock_moves() {
        let before = Utc::now();
        assert!(Clock::System.now() >= before);
    }
}
