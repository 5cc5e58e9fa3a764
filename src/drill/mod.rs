//! Drills: run a playbook's `drill` section through the real engine as a
//! drill, and judge it.
//!
//! A drill passes when its synthetic incident selects the playbook, the run
//! succeeds, and it finishes within `max_duration` (enforced as a run
//! deadline, so a hung drill is cancelled rather than merely reported).
//! Drills run unattended: they never prompt. A `confirm` step is fine when it
//! is `simulate_in_drill: true` (nothing runs, so nothing needs approval);
//! any other `confirm` step fails the drill before it starts, because an
//! unattended drill must neither approve a real action on its own nor hang
//! waiting for a person. [`batch`] chooses and runs a batch; [`due`] decides what `--due` runs; [`report`]
//! writes JUnit XML and JSON; [`lint`] checks drills across the set for
//! `irctl validate`.

pub mod batch;
pub mod due;
pub mod lint;
pub mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::engine::{self, Confirmer, Observer, RunOptions, RunStatus};
use crate::playbook::{Drill, Playbook};
use crate::secret::Secret;

/// How one drill went.
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    /// The playbook.
    pub playbook: String,
    /// Whether the drill passed.
    pub passed: bool,
    /// The run, when one was started.
    pub run_id: Option<crate::id::RunId>,
    /// Wall time of the run.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The drill's `max_duration`.
    #[serde(rename = "max_duration_ms", serialize_with = "opt_millis")]
    pub max_duration: Option<Duration>,
    /// The first step that failed, timed out or was cancelled.
    pub failed_step: Option<crate::id::StepId>,
    /// Why it failed.
    pub reason: Option<String>,
    /// The run's timeline.
    pub timeline: Option<PathBuf>,
    /// Stopped by SIGINT/SIGTERM: the batch stops too.
    #[serde(skip)]
    pub interrupted: bool,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

fn opt_millis<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_u64(d.as_millis() as u64),
        None => s.serialize_none(),
    }
}

impl Outcome {
    /// A drill that failed before a run started.
    pub fn refused(playbook: &Playbook, reason: String) -> Self {
        Outcome::not_run(
            playbook.name.clone(),
            playbook.drill.as_ref().and_then(|d| d.max_duration),
            reason,
        )
    }

    /// A playbook file with errors, found by `--all` or `--due`: its drill,
    /// if it has one, cannot run.
    pub fn unreadable(file: &str) -> Self {
        Outcome::not_run(
            file.to_string(),
            None,
            "the playbook file has errors, so its drill cannot run; `irctl validate` shows them"
                .into(),
        )
    }

    fn not_run(playbook: String, max_duration: Option<Duration>, reason: String) -> Self {
        Outcome {
            playbook,
            passed: false,
            run_id: None,
            duration: Duration::ZERO,
            max_duration,
            failed_step: None,
            reason: Some(reason),
            timeline: None,
            interrupted: false,
        }
    }
}

/// Checks what can be checked before running: there is a drill, its
/// incident selects this playbook (the one `irctl run` would pick for that
/// alert), and no step would have to ask a person.
pub fn preflight<'a>(all: &[Playbook], playbook: &'a Playbook) -> Result<&'a Drill, String> {
    let Some(drill) = &playbook.drill else {
        return Err(format!(
            "playbook `{}` has no usable `drill` section (run `irctl validate`)",
            playbook.name
        ));
    };
    let labels = drill.incident.match_labels();
    let value = crate::template::value(drill.incident.to_template_value());
    if let Some(why) = crate::matching::explain(playbook, &labels, &value) {
        return Err(format!(
            "the drill incident does not match playbook `{}`: {why}",
            playbook.name
        ));
    }
    let selection = crate::matching::select(all, &drill.incident);
    // A routing playbook runs whenever it matches, whatever else is chosen.
    let chosen =
        selection.winners.contains(&playbook.name) || selection.routing.contains(&playbook.name);
    if !chosen {
        return Err(format!(
            "the drill incident selects {} instead of `{}`; a real alert like it would run the wrong playbook",
            selection
                .winners
                .iter()
                .map(|w| format!("`{w}`"))
                .collect::<Vec<_>>()
                .join(", "),
            playbook.name
        ));
    }
    if let Some(step) = playbook
        .steps
        .iter()
        .find(|s| s.confirm.is_some() && !s.simulate_in_drill)
    {
        return Err(format!(
            "step `{}` asks for confirmation but is not `simulate_in_drill: true`; drills run unattended and never approve a real action",
            step.id
        ));
    }
    Ok(drill)
}

/// How to run drills here.
pub struct DrillOptions {
    /// State directory for runs, locks and drill records.
    pub state_dir: PathBuf,
    /// Steps running at once.
    pub concurrency: usize,
    /// Resolved secrets for this playbook.
    pub secrets: BTreeMap<String, Secret>,
    /// Who (or which cron job) runs the drill.
    pub actor: String,
    /// Stream step output to the observer.
    pub verbose: bool,
    /// Stamps the drill's run and timeline (see [`RunOptions::clock`]).
    pub clock: Clock,
    /// Keys the drill's timeline (see [`RunOptions::timeline_key`]).
    pub timeline_key: Option<crate::timeline::ChainKey>,
}

/// Nobody can be asked during a drill; [`preflight`] makes sure nobody needs to be.
struct Unattended;

impl Confirmer for Unattended {
    fn confirm(&self, _step: &str, _question: &str) -> Option<bool> {
        None
    }
}

/// Runs one drill through the engine, for `incident` (the drill's own,
/// with its ownership), and judges the result.
pub async fn run(
    playbook: &Playbook,
    drill: &Drill,
    incident: &crate::incident::Incident,
    opts: DrillOptions,
    observer: Arc<dyn Observer>,
    cancel: watch::Receiver<Option<String>>,
) -> Outcome {
    let run_opts = RunOptions {
        state_dir: opts.state_dir,
        concurrency: opts.concurrency,
        yes: false,
        verbose: opts.verbose,
        drill: true,
        executor: None,
        inputs: Vec::new(),
        secrets: opts.secrets,
        match_warning: None,
        actor: opts.actor,
        deadline: drill.max_duration,
        resume: None,
        clock: opts.clock,
        timeline_key: opts.timeline_key,
    };
    let interrupted_by = cancel.clone();
    let result = engine::run(
        playbook,
        incident,
        run_opts,
        observer,
        Arc::new(Unattended),
        cancel,
    )
    .await;
    let result = match result {
        Ok(r) => r,
        Err(e) => return Outcome::refused(playbook, format!("{e:#}")),
    };
    let failed = result
        .steps
        .iter()
        .zip(&playbook.steps)
        .find(|(r, s)| r.status.is_failure() && !s.continue_on_error)
        .or_else(|| {
            result
                .steps
                .iter()
                .zip(&playbook.steps)
                .find(|(r, _)| r.status.is_failure())
        })
        .map(|(r, _)| r);
    let max = drill.max_duration;
    let over = max.is_some_and(|m| result.duration > m);
    let interrupted = interrupted_by.borrow().is_some();
    let reason = match result.status {
        RunStatus::Cancelled if interrupted => Some(format!(
            "interrupted ({})",
            result.cancelled_by.clone().unwrap_or_default()
        )),
        RunStatus::Cancelled => match max {
            Some(m) if result.duration >= m => Some(format!(
                "exceeded max_duration {}: the run was cancelled",
                crate::duration::format(m)
            )),
            _ => Some(format!(
                "cancelled: {}",
                result.cancelled_by.clone().unwrap_or_default()
            )),
        },
        RunStatus::Failed => Some(match failed {
            Some(step) => format!(
                "step `{}` {}: {}",
                step.id,
                step.status.as_str(),
                step.reason.clone().unwrap_or_default()
            ),
            None => "the run failed".to_string(),
        }),
        RunStatus::Succeeded if over => Some(format!(
            "took {}, over max_duration {}",
            crate::duration::format(result.duration),
            crate::duration::format(max.unwrap_or_default())
        )),
        RunStatus::Succeeded => None,
    };
    Outcome {
        playbook: playbook.name.clone(),
        passed: reason.is_none(),
        run_id: Some(result.run_id),
        duration: result.duration,
        max_duration: max,
        failed_step: failed.map(|s| s.id.clone()),
        reason,
        timeline: Some(result.timeline),
        interrupted,
    }
}
