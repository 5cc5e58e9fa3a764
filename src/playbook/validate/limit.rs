//! `once_within`, `max_runs` and `concurrency`: how often and how many at
//! once a playbook may run (see [`crate::playbook::limit`]).

use super::*;

use crate::playbook::limit::{self, Limits, MaxRuns};
use crate::playbook::model::RawPlaybook;

/// Checks the playbook's limits, reporting each bad one where it is written.
pub(super) fn check(c: &mut Checker<'_>, raw: &RawPlaybook) -> Limits {
    let mut limits = Limits::default();
    if let Some(w) = &raw.once_within {
        match limit::window_of("once_within", &w.value) {
            Ok(d) => limits.once_within = Some(d),
            Err(e) => {
                c.error(w.pos, "invalid-throttle", e)
                    .with_width_mut(w.value.len())
                    .help = Some("write a duration above zero, e.g. `once_within: 30m`".into());
            }
        }
    }
    if let Some(m) = &raw.max_runs {
        match MaxRuns::parse(&m.value) {
            Ok(parsed) => limits.max_runs = Some(parsed),
            Err(e) => {
                c.error(m.pos, "invalid-throttle", e)
                    .with_width_mut(m.value.len())
                    .help = Some("e.g. `max_runs: 3 per 1h`".into());
            }
        }
    }
    if let Some(n) = &raw.concurrency {
        if (1..=limit::MAX_COUNT).contains(&n.value) {
            limits.concurrency = Some(n.value);
        } else {
            c.error(
                n.pos,
                "invalid-concurrency",
                format!(
                    "`concurrency` must be 1 to {}, found {}",
                    limit::MAX_COUNT,
                    n.value
                ),
            );
        }
    }
    limits
}
