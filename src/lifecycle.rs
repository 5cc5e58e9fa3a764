//! The incident lifecycle rule every way into a run shares — `irctl run`
//! today, the webhook receiver (`irctl serve`, which starts `irctl run` per
//! delivery) next — so both answer the same way:
//!
//! - only a firing payload starts a playbook's `steps`; a resolved or
//!   acknowledged one is recorded (as `irctl ingest` records it) and starts
//!   nothing, unless the playbook has `on_resolved` steps (for a
//!   resolution) or the caller forces it;
//! - a payload belongs to an episode of its key ([`crate::record::episode`]):
//!   the same key firing after a resolution is a new incident;
//! - a playbook that already ran in this episode is not run again for a
//!   repeated payload (Alertmanager's `repeat_interval`, at-least-once
//!   webhooks, HA pairs): the repeat is recorded as `alert_repeated` in the
//!   episode's incident log, attributed to the earlier run, unless the
//!   caller asks for another run. Incidents described by hand (`--label`,
//!   source `adhoc`) are exempt: a person asking twice means it.
//!
//! [`arrive`] places a payload in its episode; [`decide`] answers for one
//! playbook, under a per-episode-and-playbook lock that the caller keeps for
//! the whole run ([`Ticket`]), so two deliveries at the same moment never
//! both run. [`throttle`] adds the per-playbook limits across incidents,
//! and [`held`] lists what they (and the repeat rule) held back.

pub mod held;
pub mod throttle;

use std::path::Path;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::incident::Incident;
use crate::playbook::Playbook;
use crate::record::episode::{self, Episode};
use crate::record::ingest::{self, Ingested};
use crate::record::{RunSummary, Scope, Store, incident_log};
use crate::secret::Redactor;
use crate::timeline::{self, AlertRepeated, Event};

pub use crate::record::ingest::{Phase, phase};

/// The `source` of incidents built from `--label`/`--title` flags.
pub const ADHOC: &str = "adhoc";

/// A payload placed in its episode.
#[derive(Debug)]
pub struct Arrival {
    /// The incident, its `id` the episode's id (`KEY`, `KEY#2`, …); a
    /// resolved one without an end time gets the recorded resolution time.
    pub incident: Incident,
    /// The sender's key (the payload's own id).
    pub key: String,
    /// What the payload says.
    pub phase: Phase,
    /// The episode.
    pub episode: Episode,
    /// For a resolved or acknowledged payload: what was recorded, or found
    /// already recorded.
    pub recorded: Option<Ingested>,
    /// A firing payload that is a late copy of an episode already resolved
    /// (see [`episode::Firing::Late`]): nothing may run for it.
    pub late: bool,
}

/// Places `incident` in its episode. A resolved or acknowledged payload is
/// recorded in the episode's log when `record` is set (as `irctl ingest`
/// does, by `by`, at now by `clock`, redacted by `redactor`); a firing one
/// is only placed. Without `record` (a dry run) nothing is written.
pub fn arrive(
    state_dir: &Path,
    mut incident: Incident,
    by: &str,
    clock: Clock,
    redactor: Redactor,
    record: bool,
) -> anyhow::Result<Arrival> {
    let key = incident.id.clone();
    let phase = ingest::phase(&incident);
    let mut late = false;
    let (episode, recorded) = if record && phase != Phase::Firing {
        let done = ingest::ingest(state_dir, &incident, None, by, clock, redactor)?;
        (done.episode.clone(), Some(done))
    } else if phase == Phase::Firing {
        match episode::assign_firing(state_dir, &key, incident.newest_firing_start())?.0 {
            episode::Firing::In(e) => (e, None),
            episode::Firing::Late(e) => {
                late = true;
                (e, None)
            }
        }
    } else {
        let (episode, _lock) = episode::assign(state_dir, &key, false)?;
        (episode, None)
    };
    incident.id = episode.id.clone();
    if phase == Phase::Resolved && incident.ended_at.is_none() {
        incident.ended_at = recorded.as_ref().map(|r| r.when);
    }
    Ok(Arrival {
        incident,
        key,
        phase,
        episode,
        recorded,
        late,
    })
}

/// Which of a playbook's step lists a run takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Steps {
    /// `steps`, for a firing payload (or a forced run).
    Main,
    /// `on_resolved`, for a resolution.
    OnResolved,
}

/// What the caller asks beyond the rule.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// Run even if the playbook already ran in this episode (`--again`).
    pub again: bool,
    /// Run the playbook's `steps` even for a resolved or acknowledged
    /// payload (`--force`).
    pub force: bool,
}

/// Held from [`decide`] until the run has finished: while it is held, every
/// other decision for the same episode and playbook is
/// [`Decision::InProgress`].
#[derive(Debug)]
pub struct Ticket {
    _file: Option<std::fs::File>,
}

/// What to do with one playbook for an arrival.
#[derive(Debug)]
pub enum Decision {
    /// Run it.
    Run {
        /// Which steps.
        steps: Steps,
        /// Whether `--force` overrode a resolved or acknowledged payload
        /// (the run records it as a warning).
        forced: bool,
        /// Keep until the run has finished.
        ticket: Ticket,
    },
    /// The playbook already ran in this episode; not again.
    Repeat {
        /// The earliest such run.
        earlier: Box<RunSummary>,
    },
    /// Another `irctl run` is deciding or running this playbook for this
    /// episode right now.
    InProgress,
    /// A resolved or acknowledged payload, and nothing of this playbook runs
    /// for it: it is recorded only.
    RecordOnly,
}

/// Which steps of `playbook` a payload in `phase` runs, if any: `steps`
/// when firing or forced, `on_resolved` (when it has some) for a resolution.
pub fn steps_for(phase: Phase, playbook: &Playbook, force: bool) -> Option<Steps> {
    match phase {
        Phase::Firing => Some(Steps::Main),
        _ if force => Some(Steps::Main),
        Phase::Resolved if !playbook.on_resolved.is_empty() => Some(Steps::OnResolved),
        _ => None,
    }
}

/// Decides whether `playbook` runs for `arrival` (see the module doc).
pub fn decide(
    state_dir: &Path,
    arrival: &Arrival,
    playbook: &Playbook,
    alert: Option<&str>,
    opts: Options,
) -> anyhow::Result<Decision> {
    let Some(steps) = steps_for(arrival.phase, playbook, opts.force) else {
        return Ok(Decision::RecordOnly);
    };
    let forced = opts.force && arrival.phase != Phase::Firing;
    // Someone typing `--label` twice means it; the engine's own lock still
    // keeps two such runs from overlapping.
    if arrival.incident.source == ADHOC {
        return Ok(Decision::Run {
            steps,
            forced,
            ticket: Ticket { _file: None },
        });
    }
    let Some(ticket) = take_ticket(state_dir, &arrival.incident.id, &playbook.name, alert)? else {
        return Ok(Decision::InProgress);
    };
    if !opts.again
        && let Some(earlier) = earlier_run(
            state_dir,
            &arrival.incident.id,
            &playbook.name,
            alert,
            steps,
        )?
    {
        return Ok(Decision::Repeat {
            earlier: Box::new(earlier),
        });
    }
    Ok(Decision::Run {
        steps,
        forced,
        ticket,
    })
}

/// The lock of `incident` × `playbook` decisions, or `None` when another
/// process holds it.
fn take_ticket(
    state_dir: &Path,
    incident: &str,
    playbook: &str,
    alert: Option<&str>,
) -> anyhow::Result<Option<Ticket>> {
    let hash = match alert {
        Some(alert) => incident_log::id_hash(&format!("{incident}\0{playbook}\0{alert}")),
        None => incident_log::id_hash(&format!("{incident}\0{playbook}")),
    };
    let path = state_dir
        .join("locks")
        .join(format!("decide-{}.lock", &hash[..24]));
    let file = crate::lock::open(&path)?;
    Ok(crate::lock::try_lock(&file, &path)?.then_some(Ticket { _file: Some(file) }))
}

/// The earliest run of `playbook` for `incident` (and its `alert`, for a
/// per-alert playbook) that took `steps`: a run
/// recorded with a resolved incident is an `on_resolved` (or forced) run,
/// any other a firing one. Drills never count.
fn earlier_run(
    state_dir: &Path,
    incident: &str,
    playbook: &str,
    alert: Option<&str>,
    steps: Steps,
) -> anyhow::Result<Option<RunSummary>> {
    let store = Store::open_scoped(state_dir, Scope::Incident(incident))?;
    Ok(store
        .runs
        .iter()
        .filter(|r| r.summary.incident_id == incident && r.summary.playbook == playbook)
        .filter(|r| !r.summary.drill)
        .find(|r| {
            let recorded = r.started().map(|s| s.recorded_incident());
            let resolved = recorded.as_ref().is_some_and(|i| i.status == "resolved");
            // A per-alert playbook's runs for the group's other alerts are
            // not repeats of this one.
            let same_alert = alert.is_none_or(|key| {
                recorded.as_ref().is_some_and(|i| {
                    crate::incident::alert_key_of(i.fingerprint.as_deref(), &i.labels) == key
                })
            });
            resolved == (steps == Steps::OnResolved) && same_alert
        })
        .map(|r| r.summary.clone()))
}

/// Records in the episode's log that `playbook` was not run again for a
/// repeated payload, attributed to the earlier run when there is one, by
/// `by`, at `at`.
pub fn record_repeat(
    state_dir: &Path,
    arrival: &Arrival,
    playbook: &str,
    earlier: Option<&str>,
    by: &str,
    at: DateTime<Utc>,
    redactor: Redactor,
) -> anyhow::Result<Event> {
    let event = AlertRepeated {
        at: timeline::stamp(at),
        by: by.to_string(),
        source: arrival.incident.source.clone(),
        playbook: playbook.to_string(),
        earlier_run: earlier.map(str::to_string),
    };
    incident_log::append(
        state_dir,
        &arrival.incident.id,
        earlier.unwrap_or_default(),
        event,
        redactor,
    )
}

/// The file in a run's directory that tells it its incident resolved.
pub const RESOLVED_FILE: &str = "resolved.json";

/// A resolution a run in flight learns of: steps it has not started yet
/// see `incident.resolved`, and a waiting approval is cancelled.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Resolution {
    /// When the incident resolved (RFC 3339).
    pub at: String,
    /// Who recorded it.
    pub by: String,
    /// The payload's format (`alertmanager`, …).
    pub source: String,
}

/// The resolution run `run_id` was told of, if any.
pub fn resolution(state_dir: &Path, run_id: &str) -> Option<Resolution> {
    crate::approval::check_run_id(run_id).ok()?;
    let path = crate::engine::run_dir(state_dir, run_id).join(RESOLVED_FILE);
    let text = crate::approval::read_plain(&path).ok()??;
    serde_json::from_str(&text).ok()
}

/// A run of an episode that is still going: its lock's holder is alive.
#[derive(Clone, Debug)]
pub struct InFlight {
    /// The run.
    pub run_id: String,
    /// Its playbook.
    pub playbook: String,
    /// The process running it.
    pub pid: i32,
    /// That process's start time, so a reused pid is never signalled.
    pub start: u64,
}

/// The runs of episode `incident` in flight now (drills apart).
pub fn in_flight(state_dir: &Path, incident: &str) -> anyhow::Result<Vec<InFlight>> {
    let store = Store::open_scoped(state_dir, Scope::Incident(incident))?;
    let mut found = Vec::new();
    for run in &store.runs {
        let s = &run.summary;
        if s.incident_id != incident || s.drill || s.status != crate::record::UNFINISHED {
            continue;
        }
        if let Some((holder, pid, start)) = crate::lock::holder(state_dir, incident, &s.playbook)
            && holder == s.run_id
        {
            found.push(InFlight {
                run_id: s.run_id.clone(),
                playbook: s.playbook.clone(),
                pid,
                start,
            });
        }
    }
    Ok(found)
}

/// Tells run `run` its incident resolved (once; a later resolution of the
/// same episode changes nothing).
pub fn tell_resolved(
    state_dir: &Path,
    run: &InFlight,
    resolution: &Resolution,
) -> anyhow::Result<()> {
    crate::approval::check_run_id(&run.run_id)?;
    let path = crate::engine::run_dir(state_dir, &run.run_id).join(RESOLVED_FILE);
    let text = serde_json::to_vec(resolution)?;
    match crate::approval::write_new(&path, &text) {
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::AlreadyExists)
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// How [`stop`] ended a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// It cancelled itself after SIGTERM, within the grace period.
    Cancelled,
    /// It was still running after the grace period and got SIGKILL.
    Killed,
}

/// Stops run `run` (`cancel_on_resolve`): SIGTERM, which the run turns into
/// a recorded cancellation, then SIGKILL once `grace` has passed. Polls at
/// a bounded interval; never signals a pid that now belongs to another process.
pub fn stop(run: &InFlight, grace: std::time::Duration) -> Stopped {
    use nix::sys::signal::Signal;
    let alive = || crate::process::alive(run.pid, run.start);
    if alive() {
        crate::process::signal(run.pid, Signal::SIGTERM);
    }
    let deadline = std::time::Instant::now() + grace;
    while alive() {
        if std::time::Instant::now() >= deadline {
            crate::process::signal(run.pid, Signal::SIGKILL);
            return Stopped::Killed;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Stopped::Cancelled
}

/// How long a run cancelled by its incident's resolution has to record
/// its cancellation and exit before SIGKILL: longer than the engine takes
/// to stop a step's processes (SIGTERM, then SIGKILL after its own wait).
pub const CANCEL_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

/// What a resolution did to one run in flight.
#[derive(Clone, Debug)]
pub struct Settled {
    /// The run.
    pub run: InFlight,
    /// `None` when it goes on (no `cancel_on_resolve`), else how it stopped.
    pub stopped: Option<Stopped>,
}

/// Tells every run of `arrival`'s episode still in flight that the
/// incident resolved (a resolved payload, recorded by `by`), and stops
/// those whose playbook says `cancel_on_resolve` (asked of
/// `cancel_on_resolve` by playbook name), waiting up to `grace` each.
pub fn settle_in_flight(
    state_dir: &Path,
    arrival: &Arrival,
    by: &str,
    mut cancel_on_resolve: impl FnMut(&str) -> bool,
    grace: std::time::Duration,
) -> anyhow::Result<Vec<Settled>> {
    if arrival.phase != Phase::Resolved {
        return Ok(Vec::new());
    }
    let runs = in_flight(state_dir, &arrival.incident.id)?;
    let when = arrival
        .incident
        .ended_at
        .or(arrival.recorded.as_ref().map(|r| r.when));
    let resolution = Resolution {
        at: when.map(timeline::stamp).unwrap_or_default(),
        by: by.to_string(),
        source: arrival.incident.source.clone(),
    };
    let mut settled = Vec::new();
    for run in runs {
        tell_resolved(state_dir, &run, &resolution)?;
        let stopped = cancel_on_resolve(&run.playbook).then(|| stop(&run, grace));
        settled.push(Settled { run, stopped });
    }
    Ok(settled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_flight_child(script: &str) -> (std::process::Child, InFlight) {
        let child = std::process::Command::new("sh")
            .args(["-c", script])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Let the shell install its trap before it is signalled.
        std::thread::sleep(std::time::Duration::from_millis(300));
        let start = crate::process::stat(pid).unwrap().start;
        let run = InFlight {
            run_id: "r".into(),
            playbook: "p".into(),
            pid,
            start,
        };
        (child, run)
    }

    #[test]
    fn stop_sends_sigterm_then_sigkill_after_the_grace_period() {
        let (mut child, run) = in_flight_child("exec sleep 30");
        assert_eq!(
            stop(&run, std::time::Duration::from_secs(10)),
            Stopped::Cancelled
        );
        child.wait().unwrap();
        let (mut child, run) = in_flight_child("trap '' TERM; while :; do sleep 1; done");
        let began = std::time::Instant::now();
        assert_eq!(
            stop(&run, std::time::Duration::from_millis(300)),
            Stopped::Killed
        );
        assert!(began.elapsed() < std::time::Duration::from_secs(5));
        child.wait().unwrap();
    }
}
