//! The record's integrity: each run's timeline and the incident log
//! checked against their hash chains, in the words `irctl timeline verify`
//! uses.

use super::Integrity;
use crate::record::{Run, Store, incident_log, verify};
use crate::timeline::{ChainKey, Scheme};

/// The verdict on each run's timeline, then on the incident log when there is one.
pub(super) fn integrity(
    store: &Store,
    runs: &[&Run],
    id: &str,
    key: Option<&ChainKey>,
) -> Vec<Integrity> {
    let mut out: Vec<Integrity> = runs
        .iter()
        .map(|r| {
            check(
                &format!("run {}", r.summary.run_id),
                &r.summary.timeline,
                key,
                true,
            )
        })
        .collect();
    let log = incident_log::path(&store.dir, id);
    if log.exists() {
        out.push(check("incident log", &log, None, false));
    }
    out
}

/// One record's verdict, in the words `irctl timeline verify` uses: a run
/// without its `run_finished` is incomplete, not intact, and an unkeyed
/// chain says it is not anchored.
fn check(record: &str, path: &std::path::Path, key: Option<&ChainKey>, run: bool) -> Integrity {
    match verify::verify_with(path, key) {
        Ok(r) => Integrity {
            record: record.to_string(),
            ok: r.ok() && (r.finished || !run),
            message: match &r.problem {
                Some(p) => p.message.clone(),
                None if run && !r.finished => format!(
                    "incomplete: {} events chain correctly, but there is no `run_finished` after the last start (still running, killed, or cut off)",
                    r.events
                ),
                None if r.scheme == Some(Scheme::Keyed) => format!(
                    "{} events, keyed chain intact (final hash {})",
                    r.events,
                    crate::timeline::chain::display(&r.head)
                ),
                None => format!(
                    "{} events, chain intact (not keyed; final hash {})",
                    r.events,
                    crate::timeline::chain::display(&r.head)
                ),
            },
        },
        Err(e) => Integrity {
            record: record.to_string(),
            ok: false,
            message: format!("{e:#}"),
        },
    }
}
