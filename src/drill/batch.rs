//! A batch of drills, as `irctl drill` runs it: [`choose`] picks the
//! playbooks — by name, every one with a `drill` section (`--all`), or the
//! ones [`due`](super::due) by schedule (`--due`, under the batch lock) —
//! and [`run`] drills them one after another, records each in the due-state,
//! and stops at an interrupt. Unattended batches count a playbook file they
//! could not read as a drill that cannot run, so the batch fails until it
//! is fixed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use super::due::{self, BatchLock, Notice, Record};
use super::{DrillOptions, Outcome};
use crate::clock::Clock;
use crate::engine::Observer;
use crate::incident::Incident;
use crate::playbook::{Playbook, PlaybookSet};
use crate::secret::Secret;

/// Which drills a batch runs.
#[derive(Clone, Copy, Debug)]
pub enum Selection<'a> {
    /// The playbooks named.
    Named(&'a [String]),
    /// Every playbook with a `drill` section.
    All,
    /// The drills due by their schedules.
    Due,
}

/// The drills a batch runs.
#[derive(Debug)]
pub struct Chosen<'a> {
    /// The playbooks to drill, in order.
    pub playbooks: Vec<&'a Playbook>,
    /// Unreadable playbook files of an unattended batch, as failed drills.
    pub broken: Vec<Outcome>,
    /// What `--due` has to say about each drilled playbook.
    pub notices: Vec<Notice>,
    /// Held until the batch is done, so two `--due` batches never overlap.
    _lock: Option<BatchLock>,
}

impl Chosen<'_> {
    /// Whether there is nothing to drill, not even a broken file.
    pub fn is_empty(&self) -> bool {
        self.playbooks.is_empty() && self.broken.is_empty()
    }
}

/// What [`choose`] found.
#[derive(Debug)]
pub enum Choice<'a> {
    /// The batch to run.
    Chosen(Chosen<'a>),
    /// Another `--due` batch holds the lock (its path): the due drills are its.
    Busy(PathBuf),
}

/// Chooses the drills of `selection` among `set`, deciding `--due` at `now`
/// by the record in `state_dir`; an unknown name is an error.
pub fn choose<'a>(
    set: &'a PlaybookSet,
    selection: Selection<'_>,
    state_dir: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<Choice<'a>> {
    let mut lock = None;
    let mut notices = Vec::new();
    let playbooks: Vec<&Playbook> = match selection {
        Selection::Due => {
            let Some(held) = due::try_batch_lock(state_dir)? else {
                return Ok(Choice::Busy(state_dir.join(due::BATCH_LOCK)));
            };
            lock = Some(held);
            let state = due::load(state_dir)?;
            let selected = due::select(&set.playbooks, &state, state_dir, now);
            notices = selected.notices;
            selected.due
        }
        Selection::All => set.playbooks.iter().filter(|p| p.drill.is_some()).collect(),
        Selection::Named(names) => names
            .iter()
            .map(|name| {
                set.get(name).ok_or_else(|| {
                    crate::playbook::unknown_playbook(
                        name,
                        set.playbooks.iter().map(|p| p.name.as_str()),
                    )
                })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let broken = match selection {
        Selection::All | Selection::Due => {
            let mut files = set.broken_files();
            files.sort_unstable();
            files.into_iter().map(Outcome::unreadable).collect()
        }
        Selection::Named(_) => Vec::new(),
    };
    Ok(Choice::Chosen(Chosen {
        playbooks,
        broken,
        notices,
        _lock: lock,
    }))
}

/// The secrets of one playbook, or why they cannot be had.
pub type SecretSource<'a> = &'a dyn Fn(&Playbook) -> anyhow::Result<BTreeMap<String, Secret>>;

/// How a drill's `team: owner|impacted` steps are aimed, as `irctl run`
/// aims them for a real alert: the incident with the ownership the catalog
/// gives it, and the playbook with those steps pointed at its teams (each
/// `None` when nothing changes). An error fails only that drill.
pub type Aim<'a> =
    &'a dyn Fn(&Playbook, &Incident) -> anyhow::Result<(Option<Playbook>, Option<Incident>)>;

/// How to run a chosen batch here.
pub struct BatchRequest<'a> {
    /// Every valid playbook: a drill's incident must select its own playbook among them.
    pub all: &'a [Playbook],
    /// State directory for runs, locks and the due-state.
    pub state_dir: &'a Path,
    /// When the batch runs, as the due-state records it.
    pub now: DateTime<Utc>,
    /// Steps running at once within a drill.
    pub concurrency: usize,
    /// Stream step output to the observer.
    pub verbose: bool,
    /// Who (or which cron job) runs the drills.
    pub actor: &'a str,
    /// Stamps the drills' runs and timelines.
    pub clock: Clock,
    /// The secrets of each playbook; an error fails only its drill.
    pub secrets: SecretSource<'a>,
    /// Aims each drill's team steps at its incident's owner and impacted teams.
    pub aim: Aim<'a>,
    /// Keys the drills' timelines.
    pub timeline_key: Option<crate::timeline::ChainKey>,
    /// Sees every drill's events.
    pub observer: Arc<dyn Observer>,
    /// Told a problem that fails no drill (a due-state that could not be saved).
    pub warn: &'a dyn Fn(&str),
}

/// Drills `chosen` one after another, after its broken files' outcomes;
/// each finished drill is recorded in the due-state; an interrupt ends the
/// batch after the drill it stopped.
pub async fn run(
    req: BatchRequest<'_>,
    chosen: Chosen<'_>,
    cancel: watch::Receiver<Option<String>>,
) -> Vec<Outcome> {
    let mut outcomes = chosen.broken;
    for playbook in chosen.playbooks {
        let outcome = drill_one(&req, playbook, cancel.clone()).await;
        if !outcome.interrupted
            && let Err(e) =
                due::record(req.state_dir, &playbook.name, Record::of(&outcome, req.now))
        {
            (req.warn)(&format!("{e:#}"));
        }
        let stop = outcome.interrupted;
        outcomes.push(outcome);
        if stop {
            break;
        }
    }
    outcomes
}

async fn drill_one(
    req: &BatchRequest<'_>,
    playbook: &Playbook,
    cancel: watch::Receiver<Option<String>>,
) -> Outcome {
    let drill = match super::preflight(req.all, playbook) {
        Ok(d) => d,
        Err(reason) => return Outcome::refused(playbook, reason),
    };
    let (targeted, owned) = match (req.aim)(playbook, &drill.incident) {
        Ok(aimed) => aimed,
        Err(e) => return Outcome::refused(playbook, format!("{e:#}")),
    };
    let playbook = targeted.as_ref().unwrap_or(playbook);
    let incident = owned.as_ref().unwrap_or(&drill.incident);
    let secrets = match (req.secrets)(playbook) {
        Ok(s) => s,
        Err(e) => return Outcome::refused(playbook, format!("{e:#}")),
    };
    let opts = DrillOptions {
        state_dir: req.state_dir.to_path_buf(),
        concurrency: req.concurrency,
        secrets,
        actor: req.actor.to_string(),
        verbose: req.verbose,
        clock: req.clock,
        timeline_key: req.timeline_key.clone(),
    };
    super::run(
        playbook,
        drill,
        incident,
        opts,
        Arc::clone(&req.observer),
        cancel,
    )
    .await
}

/// How a batch went, for the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every drill passed.
    Passed,
    /// A drill failed.
    Failed,
    /// A signal stopped the batch.
    Interrupted,
}

/// The verdict over `outcomes`: an interrupt wins over a failure.
pub fn verdict(outcomes: &[Outcome]) -> Verdict {
    if outcomes.iter().any(|o| o.interrupted) {
        Verdict::Interrupted
    } else if outcomes.iter().any(|o| !o.passed) {
        Verdict::Failed
    } else {
        Verdict::Passed
    }
}
