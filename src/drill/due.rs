//! `irctl drill --due`: which drills came due, and the record of past drills.
//!
//! The record is `STATE_DIR/drills.json`: per playbook, when its last drill
//! ran (by the drill clock), its run id and result. It is rewritten whole
//! through a temporary file and a rename, so a crash leaves the old or the
//! new record, never half of one, under a short lock (`drills.json.lock`)
//! so concurrent writers do not lose each other's entries.
//!
//! The rule: a drill is due when its schedule has fired (at least once)
//! after its last recorded drill. A missed cron run therefore never skips a
//! drill — the slot is still "after the last drill" an hour later — and
//! several missed slots run the drill once, because running it records a new
//! "last drill" after all of them. A playbook that was never drilled is due
//! at once: a playbook nobody has run is a guess, and waiting for its next
//! slot could leave it untried for a week. A whole `--due` batch holds
//! `drills.due.lock`, so an overlapping cron run finds it busy and leaves.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::Outcome;
use crate::lock;
use crate::playbook::Playbook;

/// The record's file name inside the state directory.
pub const STATE_FILE: &str = "drills.json";
/// Held by a running `--due` batch.
pub const BATCH_LOCK: &str = "drills.due.lock";

/// Every playbook's last drill.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct State {
    /// The record format's version.
    #[serde(default = "version_one")]
    pub version: u32,
    /// Last drill by playbook name.
    #[serde(default)]
    pub drills: BTreeMap<String, Record>,
}

fn version_one() -> u32 {
    1
}

/// One playbook's last drill.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// When it ran, by the drill clock (`--now`/`IRCTL_NOW` in tests).
    pub last_at: DateTime<Utc>,
    /// Its run.
    pub run_id: Option<crate::id::RunId>,
    /// `passed` or `failed`.
    pub result: String,
}

impl Record {
    /// The record of `outcome`, a drill that ran at `at`.
    pub fn of(outcome: &Outcome, at: DateTime<Utc>) -> Self {
        Record {
            last_at: at,
            run_id: outcome.run_id.clone(),
            result: if outcome.passed { "passed" } else { "failed" }.into(),
        }
    }
}

/// Whether a drill should run now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Due {
    /// Never drilled: due at once.
    Never,
    /// The schedule fired `missed` times since the last drill, first at `slot`.
    Since {
        /// The first slot after the last drill.
        slot: DateTime<Utc>,
        /// How many slots passed (capped at 1000); the drill still runs once.
        missed: u32,
    },
    /// Not due until `next`.
    NotUntil(DateTime<Utc>),
    /// No `schedule`: only `irctl drill NAME` or `--all` run it.
    Unscheduled,
}

impl Due {
    /// Whether to run it.
    pub fn is_due(&self) -> bool {
        matches!(self, Due::Never | Due::Since { .. })
    }
}

/// Decides whether a drill with `schedule`, last drilled at `last`, is due at `now`.
pub fn due(
    schedule: Option<&str>,
    last: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Due, String> {
    let Some(schedule) = schedule else {
        return Ok(Due::Unscheduled);
    };
    let cron = crate::schedule::parse(schedule)?;
    let Some(last) = last else {
        return Ok(Due::Never);
    };
    let Some(slot) = crate::schedule::next_after(&cron, last) else {
        return Err(format!("schedule `{schedule}` never fires again"));
    };
    if slot > now {
        return Ok(Due::NotUntil(slot));
    }
    let mut missed = 1;
    let mut at = slot;
    while missed < 1000 {
        match crate::schedule::next_after(&cron, at) {
            Some(next) if next <= now => {
                missed += 1;
                at = next;
            }
            _ => break,
        }
    }
    Ok(Due::Since { slot, missed })
}

/// Something `--due` has to say about a playbook while choosing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// Why it runs now, or when it will.
    Info(String),
    /// A problem to fix: a schedule that cannot work, a record from the future.
    Warning(String),
}

/// The drills due now, and what to say about every drilled playbook.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    /// The playbooks to drill, in load order.
    pub due: Vec<&'a Playbook>,
    /// In playbook order, to print as the batch starts.
    pub notices: Vec<Notice>,
}

/// Chooses the drills due at `now` among `playbooks` with a `drill`
/// section, by `state`, the record kept in `state_dir`.
pub fn select<'a>(
    playbooks: &'a [Playbook],
    state: &State,
    state_dir: &Path,
    now: DateTime<Utc>,
) -> Selection<'a> {
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut selection = Selection::default();
    for p in playbooks.iter().filter(|p| p.drill.is_some()) {
        let schedule = p.drill.as_ref().and_then(|d| d.schedule.as_deref());
        let mut last = state.drills.get(&p.name).map(|r| r.last_at);
        // A last drill "in the future" (a clock that was wrong, a hand
        // edit) would hold the drill back until then: run it now instead.
        if let Some(at) = last.filter(|at| *at > now) {
            selection.notices.push(Notice::Warning(format!(
                "{}: last drill recorded at {}, after now ({}); the clock or `{}` is wrong, so it counts as never drilled",
                p.name,
                stamp(at),
                stamp(now),
                state_dir.join(STATE_FILE).display()
            )));
            last = None;
        }
        let decision = due(schedule, last, now);
        if decision.as_ref().is_ok_and(Due::is_due) {
            selection.due.push(p);
        }
        let notice = match decision {
            Ok(Due::Never) => Notice::Info(format!("{}: never drilled, due now", p.name)),
            Ok(Due::Since { slot, missed }) => {
                let more = if missed > 1 {
                    format!(" ({missed} slots since the last drill; running once)")
                } else {
                    String::new()
                };
                Notice::Info(format!("{}: due since {}{more}", p.name, stamp(slot)))
            }
            Ok(Due::NotUntil(next)) => {
                Notice::Info(format!("{}: not due until {}", p.name, stamp(next)))
            }
            Ok(Due::Unscheduled) => continue,
            Err(e) => Notice::Warning(format!("{}: drill schedule: {e}", p.name)),
        };
        selection.notices.push(notice);
    }
    selection
}

/// Reads the record; a missing file is an empty record.
pub fn load(state_dir: &Path) -> anyhow::Result<State> {
    let path = state_dir.join(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", path.display())),
    };
    serde_json::from_str(&text).with_context(|| {
        format!(
            "`{}` is not a drill record; fix or remove it (it only remembers when drills last ran)",
            path.display()
        )
    })
}

/// Records `record` for `playbook`: read, update, write a temp file, rename, all under a lock.
pub fn record(state_dir: &Path, playbook: &str, record: Record) -> anyhow::Result<()> {
    let lock_path = state_dir.join(format!("{STATE_FILE}.lock"));
    let lock = lock::open(&lock_path)?;
    lock::lock_within(&lock, &lock_path, lock::SHORT_LOCK_WAIT)?;
    let mut state = load(state_dir)?;
    state.version = 1;
    state.drills.insert(playbook.to_string(), record);
    let path = state_dir.join(STATE_FILE);
    let mut text = serde_json::to_string_pretty(&state).context("cannot serialize drill record")?;
    text.push('\n');
    crate::fsutil::write_replacing(&path, text.as_bytes())?;
    drop(lock);
    Ok(())
}

/// Held while a `--due` batch runs; dropping it releases the lock.
#[derive(Debug)]
pub struct BatchLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// Takes the `--due` batch lock, or `None` when another batch holds it.
pub fn try_batch_lock(state_dir: &Path) -> anyhow::Result<Option<BatchLock>> {
    let path = state_dir.join(BATCH_LOCK);
    let file = lock::open(&path)?;
    Ok(lock::try_lock(&file, &path)?.then_some(BatchLock { _file: file, path }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn never_drilled_is_due_and_unscheduled_is_not() {
        let now = t("2026-03-02T10:30:00Z");
        assert_eq!(due(Some("0 10 * * MON"), None, now), Ok(Due::Never));
        assert_eq!(due(None, None, now), Ok(Due::Unscheduled));
    }

    #[test]
    fn a_missed_slot_is_still_due_and_several_run_once() {
        let last = t("2026-03-02T10:30:00Z"); // a Monday
        let sched = Some("0 10 * * MON");
        assert_eq!(
            due(sched, Some(last), t("2026-03-09T09:59:00Z")),
            Ok(Due::NotUntil(t("2026-03-09T10:00:00Z")))
        );
        // The 10:00 cron run was missed; at 13:00 the slot is still due.
        assert_eq!(
            due(sched, Some(last), t("2026-03-09T13:00:00Z")),
            Ok(Due::Since {
                slot: t("2026-03-09T10:00:00Z"),
                missed: 1
            })
        );
        assert_eq!(
            due(sched, Some(last), t("2026-03-23T11:00:00Z")),
            Ok(Due::Since {
                slot: t("2026-03-09T10:00:00Z"),
                missed: 3
            })
        );
    }
}
