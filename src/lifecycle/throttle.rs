//! The per-playbook limits across incidents: `once_within`, `max_runs`
//! ([`admit`]) and `concurrency` ([`take_slot`]).
//!
//! The per-episode repeat rule lets every incident of a flapping fleet
//! through; these limits count every run of one playbook, whichever
//! incident it is for. The count lives in the state directory, so
//! `irctl run` by hand and `irctl serve` agree and a restart forgets
//! nothing: one small run log per playbook (`throttle/<hash>.jsonl`, a line
//! per admitted run, older lines than the longest window dropped), read and
//! appended under that playbook's lock so two deliveries at the same moment
//! cannot both slip under a limit. Reading it costs one small file, not a
//! scan of every timeline.
//!
//! A run counts from the moment it is admitted. `--again` overrides a
//! throttle (the run is admitted, counted, and records which limit it
//! overrode); nothing overrides `concurrency`, whose extra runs wait for a
//! slot — one flock per slot under `locks/` — for at most
//! [`MAX_SLOT_WAIT`] (or the playbook's `timeout`, when shorter). A run
//! that must not wait (`irctl serve`'s, which would hold a worker) asks
//! [`slot_without_waiting`] instead and is retried later by its caller,
//! which keeps the wait's start so the same limit applies.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Arrival;
use crate::playbook::Playbook;
use crate::record::incident_log;
use crate::secret::Redactor;
use crate::timeline::{self, Event, RunThrottled};

/// The directory of the per-playbook run logs.
pub const DIR_NAME: &str = "throttle";
/// How long a run waits for a `concurrency` slot at most.
pub const MAX_SLOT_WAIT: Duration = Duration::from_secs(30 * 60);
/// How often a waiting run tries the slots again.
const SLOT_POLL: Duration = Duration::from_millis(100);
/// How long the run log's lock is waited for: its holders keep it for one
/// read and one append.
const LOG_LOCK_WAIT: Duration = Duration::from_secs(30);
/// Lines of a run log past which its expired lines are dropped.
const COMPACT_AFTER: usize = 256;

/// A limit that held, for the record and the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Throttled {
    /// The limit as written (`once_within: 30m`, `max_runs: 3 per 1h`).
    pub rule: String,
    /// Which kind of limit (`once_within`, `max_runs`, `concurrency`), for metrics.
    pub kind: &'static str,
    /// When the playbook may run again; `None` for `concurrency`.
    pub next_run_at: Option<DateTime<Utc>>,
}

/// What [`admit`] decided.
#[derive(Debug)]
pub enum Admission {
    /// Run it; it is counted.
    Admitted {
        /// The limit `--again` overrode, when one held.
        overridden: Option<Throttled>,
    },
    /// Do not run it.
    Throttled(Throttled),
}

/// One admitted run, as a line of the run log.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// When it was admitted, in Unix milliseconds.
    at_ms: i64,
    /// For which incident.
    incident: String,
}

/// Decides, under `playbook`'s run-log lock, whether its `once_within` and
/// `max_runs` let a run for `incident` start at `now`, and counts the run
/// when they do (or when `again` overrides them).
pub fn admit(
    state_dir: &Path,
    playbook: &Playbook,
    incident: &str,
    now: DateTime<Utc>,
    again: bool,
) -> anyhow::Result<Admission> {
    let limits = playbook.limits;
    let Some(window) = limits.window() else {
        return Ok(Admission::Admitted { overridden: None });
    };
    let hash = key(&playbook.name);
    let lock_path = state_dir
        .join("locks")
        .join(format!("throttle-{hash}.lock"));
    let lock = crate::lock::open(&lock_path)?;
    crate::lock::lock_within(&lock, &lock_path, LOG_LOCK_WAIT)?;
    let log = log_path(state_dir, &hash);
    let (mut recent, expired) = read_log(&log, now, window)?;
    let mut held = None;
    if let Some(once) = limits.once_within
        && let Some(last) = recent.iter().map(|e| e.at_ms).max()
        && let Some(next) = after(last, once)
        && next > now
    {
        held = Some(Throttled {
            rule: format!("once_within: {}", crate::playbook::limit::show(once)),
            kind: "once_within",
            next_run_at: Some(next),
        });
    }
    if held.is_none()
        && let Some(max) = limits.max_runs
    {
        let mut within: Vec<i64> = recent
            .iter()
            .map(|e| e.at_ms)
            .filter(|at| after(*at, max.per).is_some_and(|end| end > now))
            .collect();
        within.sort_unstable_by(|a, b| b.cmp(a));
        let n = usize::try_from(max.runs).unwrap_or(usize::MAX);
        if within.len() >= n
            && let Some(oldest_counted) = within.get(n.saturating_sub(1))
        {
            held = Some(Throttled {
                rule: format!("max_runs: {max}"),
                kind: "max_runs",
                next_run_at: after(*oldest_counted, max.per),
            });
        }
    }
    if let Some(throttled) = held.clone()
        && !again
    {
        return Ok(Admission::Throttled(throttled));
    }
    let entry = Entry {
        at_ms: now.timestamp_millis(),
        incident: incident.to_string(),
    };
    if expired > 0 && recent.len() + expired > COMPACT_AFTER {
        recent.push(entry);
        rewrite(&log, &recent)?;
    } else {
        append(&log, &entry)?;
    }
    drop(lock);
    Ok(Admission::Admitted { overridden: held })
}

/// `at_ms` plus `d`, as a time.
fn after(at_ms: i64, d: Duration) -> Option<DateTime<Utc>> {
    let d = chrono::Duration::from_std(d).ok()?;
    DateTime::from_timestamp_millis(at_ms)?.checked_add_signed(d)
}

/// The file-safe key of a playbook's log and locks.
fn key(playbook: &str) -> String {
    incident_log::id_hash(&format!("playbook\0{playbook}"))[..24].to_string()
}

fn log_path(state_dir: &Path, hash: &str) -> PathBuf {
    state_dir.join(DIR_NAME).join(format!("{hash}.jsonl"))
}

/// The log's entries younger than `window` at `now`, and how many older
/// ones it holds. A torn or foreign line is skipped: the log only ever
/// counts towards a limit.
fn read_log(
    path: &Path,
    now: DateTime<Utc>,
    window: Duration,
) -> anyhow::Result<(Vec<Entry>, usize)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), 0)),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read run log `{}`", path.display()));
        }
    };
    let mut recent = Vec::new();
    let mut expired = 0;
    for line in text.lines() {
        let Ok(entry) = serde_json::from_str::<Entry>(line) else {
            expired += 1;
            continue;
        };
        if after(entry.at_ms, window).is_some_and(|end| end > now) {
            recent.push(entry);
        } else {
            expired += 1;
        }
    }
    Ok((recent, expired))
}

fn line(entry: &Entry) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string(entry)?))
}

fn append(path: &Path, entry: &Entry) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open run log `{}`", path.display()))?;
    f.write_all(line(entry)?.as_bytes())
        .and_then(|()| f.sync_data())
        .with_context(|| format!("cannot write run log `{}`", path.display()))
}

/// Replaces the log with `entries`, atomically.
fn rewrite(path: &Path, entries: &[Entry]) -> anyhow::Result<()> {
    let mut text = String::new();
    for e in entries {
        text.push_str(&line(e)?);
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut f = File::create(&tmp).with_context(|| format!("cannot create `{}`", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_data())
        .with_context(|| format!("cannot write `{}`", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot replace run log `{}`", path.display()))
}

/// One of a playbook's `concurrency` slots, held until the run has
/// finished; a playbook without `concurrency` holds none.
#[derive(Debug)]
pub struct Slot {
    _file: Option<File>,
    /// How long the run waited for it, when none was free at once.
    pub waited: Option<Duration>,
}

/// Takes a free `concurrency` slot of `playbook`, waiting for one at most
/// `limit`; `None` when none came free in time.
pub fn take_slot(
    state_dir: &Path,
    playbook: &Playbook,
    limit: Duration,
) -> anyhow::Result<Option<Slot>> {
    let Some(n) = playbook.limits.concurrency else {
        return Ok(Some(Slot {
            _file: None,
            waited: None,
        }));
    };
    let hash = key(&playbook.name);
    let mut slots = Vec::new();
    for i in 0..n {
        let path = state_dir
            .join("locks")
            .join(format!("slot-{hash}-{i}.lock"));
        let file = crate::lock::open(&path)?;
        slots.push((path, file));
    }
    let start = Instant::now();
    let mut first = true;
    loop {
        for i in 0..slots.len() {
            let (path, file) = &slots[i];
            if crate::lock::try_lock(file, path)? {
                let (_, file) = slots.swap_remove(i);
                return Ok(Some(Slot {
                    _file: Some(file),
                    waited: (!first).then(|| start.elapsed()),
                }));
            }
        }
        first = false;
        if start.elapsed() >= limit {
            return Ok(None);
        }
        std::thread::sleep(SLOT_POLL);
    }
}

/// What [`slot_without_waiting`] found.
#[derive(Debug)]
pub enum NoWait {
    /// A slot, taken.
    Slot(Slot),
    /// None is free (or an older waiter comes first): try again later.
    Defer,
    /// None came free within [`slot_wait`] of the first try: give up, as a
    /// waiting run would.
    GiveUp(Throttled),
}

/// Takes a free `concurrency` slot of `playbook` without waiting for one.
/// `behind`: an older waiter comes first, so take none. `waiting_since`:
/// when the first try was, so the slot records the whole wait and the
/// wait ends after [`slot_wait`] as a waiting run's would.
pub fn slot_without_waiting(
    state_dir: &Path,
    playbook: &Playbook,
    behind: bool,
    waiting_since: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> anyhow::Result<NoWait> {
    let waited = waiting_since.and_then(|since| (now - since).to_std().ok());
    if !behind && let Some(mut slot) = take_slot(state_dir, playbook, Duration::ZERO)? {
        if slot._file.is_some() {
            slot.waited = waited.filter(|w| !w.is_zero());
        }
        return Ok(NoWait::Slot(slot));
    }
    if waited.is_some_and(|w| w >= slot_wait(playbook)) {
        return Ok(NoWait::GiveUp(concurrency_held(playbook)));
    }
    Ok(NoWait::Defer)
}

/// The `concurrency` limit of `playbook`, as a limit that held.
pub fn concurrency_held(playbook: &Playbook) -> Throttled {
    Throttled {
        rule: format!(
            "concurrency: {}",
            playbook.limits.concurrency.unwrap_or_default()
        ),
        kind: "concurrency",
        next_run_at: None,
    }
}

/// How long a run of `playbook` may wait for a slot.
pub fn slot_wait(playbook: &Playbook) -> Duration {
    playbook
        .timeout
        .map_or(MAX_SLOT_WAIT, |t| t.min(MAX_SLOT_WAIT))
}

/// Records in the episode's log that `playbook` was not run for `arrival`
/// because `throttled` held, by `by`, at `at`.
pub fn record(
    state_dir: &Path,
    arrival: &Arrival,
    playbook: &str,
    throttled: &Throttled,
    by: &str,
    at: DateTime<Utc>,
    redactor: Redactor,
) -> anyhow::Result<Event> {
    let event = RunThrottled {
        at: timeline::stamp(at),
        by: by.to_string(),
        source: arrival.incident.source.clone(),
        playbook: playbook.to_string(),
        rule: throttled.rule.clone(),
        next_run_at: throttled.next_run_at.map(timeline::stamp),
    };
    incident_log::append(state_dir, &arrival.incident.id, "", event, redactor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn playbook(limits: &str) -> Playbook {
        let yaml = format!(
            "version: 1\nname: t\ntitle: T\n{limits}\nsteps:\n  - id: a\n    shell: echo a\n"
        );
        let (p, diags) = crate::playbook::validate::check_file("t.yaml", &yaml, Default::default());
        p.unwrap_or_else(|| panic!("{diags:?}"))
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    fn admitted(a: Admission) -> bool {
        matches!(a, Admission::Admitted { .. })
    }

    #[test]
    fn max_runs_slides_and_the_log_stays_small() {
        let dir = tempfile::tempdir().unwrap();
        let p = playbook("max_runs: 2 per 10s");
        let admit_at = |secs| admit(dir.path(), &p, "i", at(secs), false).unwrap();
        assert!(admitted(admit_at(0)));
        assert!(admitted(admit_at(4)));
        match admit_at(5) {
            Admission::Throttled(t) => {
                assert_eq!(t.rule, "max_runs: 2 per 10s");
                assert_eq!(t.next_run_at, Some(at(10)));
            }
            other => panic!("{other:?}"),
        }
        // The run at 0 has left the window; the one at 4 has not.
        assert!(admitted(admit_at(10)));
        assert!(!admitted(admit_at(11)));
        // Hundreds of runs, each outside the last one's window, keep the
        // log to what the window needs.
        for i in 0..600 {
            assert!(admitted(admit_at(100 + i * 20)));
        }
        let log = log_path(dir.path(), &key("t"));
        let lines = std::fs::read_to_string(log).unwrap().lines().count();
        assert!(lines <= COMPACT_AFTER + 1, "{lines} lines");
    }

    #[test]
    fn again_is_admitted_and_counted_with_the_rule_it_overrode() {
        let dir = tempfile::tempdir().unwrap();
        let p = playbook("once_within: 1m");
        assert!(admitted(admit(dir.path(), &p, "a", at(0), false).unwrap()));
        match admit(dir.path(), &p, "b", at(30), true).unwrap() {
            Admission::Admitted {
                overridden: Some(t),
            } => assert_eq!(t.next_run_at, Some(at(60))),
            other => panic!("{other:?}"),
        }
        // The overriding run counts: the window starts again from it.
        match admit(dir.path(), &p, "c", at(70), false).unwrap() {
            Admission::Throttled(t) => assert_eq!(t.next_run_at, Some(at(90))),
            other => panic!("{other:?}"),
        }
    }
}
