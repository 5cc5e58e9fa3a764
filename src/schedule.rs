//! Drill schedules: 5-field cron expressions (`0 10 * * MON`).

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::memo::Memo;

/// Parses a 5-field cron expression (or `@daily`-style nickname), once per
/// distinct text per process: croner's parser is slow (a tenth of a
/// millisecond) and playbook repos reuse a handful of schedules.
pub fn parse(text: &str) -> Result<Cron, String> {
    static SCHEDULES: Memo<Result<Cron, String>> = Memo::new();
    SCHEDULES.get_or(text, || parse_uncached(text))
}

fn parse_uncached(text: &str) -> Result<Cron, String> {
    let t = text.trim();
    let fields = t.split_whitespace().count();
    if !t.starts_with('@') && fields != 5 {
        return Err(format!("expected 5 fields, found {fields}"));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(t)
        .map_err(|e| e.to_string())
}

/// The next time strictly after `after` that `cron` fires.
pub fn next_after(cron: &Cron, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&after, false).ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn five_fields_only() {
        assert!(super::parse("0 10 * * MON").is_ok());
        assert!(super::parse("@daily").is_ok());
        assert!(super::parse("0 10 * *").is_err());
        assert!(super::parse("0 0 10 * * MON").is_err());
        assert!(super::parse("61 10 * * *").is_err());
    }
}
