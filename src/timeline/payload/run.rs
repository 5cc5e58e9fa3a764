//! Payloads of a run's own timeline: how it started or resumed, each step's
//! attempts and outcome, its notifications, and how it ended; with the
//! statuses and the provenance those events carry.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::StepId;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed.
    Failed,
    /// It ran past its timeout and was killed.
    TimedOut,
    /// The run was interrupted while it ran, or before it could start.
    Cancelled,
    /// It did not run (trigger or `when`).
    Skipped,
    /// A drill recorded what it would have done instead of doing it.
    Simulated,
}

impl StepStatus {
    /// The name used in the timeline and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
            StepStatus::Simulated => "simulated",
        }
    }

    /// Whether the step ran into trouble (for `on_failure` triggers).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled
        )
    }
}

/// The outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step succeeded, was skipped, or failed with `continue_on_error`.
    Succeeded,
    /// A step failed.
    Failed,
    /// Interrupted.
    Cancelled,
}

impl RunStatus {
    /// Name in the timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a playbook came from, precisely enough to reproduce the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Repository URL or path, when loaded from Git or a Git worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The ref asked for.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The commit the file was read at (or the worktree's HEAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The file path as shown to users.
    pub path: String,
    /// The Git blob id of the file's exact bytes.
    pub blob: String,
    /// For a worktree: whether the file differs from HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
}

/// `run_started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    /// The playbook's name.
    pub playbook: String,
    /// Its title.
    pub title: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Which version of the file ran.
    pub provenance: Provenance,
    /// The incident as templates saw it (see [`crate::timeline::RecordedIncident`]).
    pub incident: Value,
    /// The resolved inputs.
    pub inputs: Map<String, Value>,
    /// Whether this is a drill.
    pub drill: bool,
    /// Steps running at once.
    pub concurrency: usize,
    /// Who ran it.
    pub actor: String,
    /// The step ids, in playbook order.
    pub steps: Vec<StepId>,
    /// The steps marked `report: true`, whose output the postmortem quotes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<StepId>,
}

/// `run_resumed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    /// This attempt's number (the first run is attempt 1).
    pub attempt: u32,
    /// The playbook's name.
    pub playbook: String,
    /// Which version of the file runs now.
    pub provenance: Provenance,
    /// Who resumed it.
    pub actor: String,
    /// Steps that succeeded earlier and are not run again.
    pub reused: Vec<StepId>,
    /// Bytes of a torn last line cut off before resuming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_tail_bytes: Option<u64>,
    /// Why it resumed as it did.
    #[serde(flatten)]
    pub note: ResumeNote,
}

/// What `irctl resume` decided before continuing a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeNote {
    /// How the previous attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The hash chain was broken, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_broken: Option<String>,
    /// Resumed although the playbook file changed (`--force`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<bool>,
    /// The provenance the earlier attempts recorded, when forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_provenance: Option<Provenance>,
    /// Who approved running `idempotent: false` steps again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_repeats: Option<Vec<Approval>>,
}

/// An approval to run a step again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The step.
    pub step: StepId,
    /// Who approved.
    pub by: String,
    /// How (`tty` or `--yes`).
    pub via: String,
}

/// `warning`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// What to know.
    pub message: String,
}

/// `step_started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStarted {
    /// The step.
    pub step: StepId,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// `shell`, `http` or `notify`.
    pub kind: String,
    /// The rendered command or request (see [`crate::timeline::describe::action_text`]).
    pub action: Value,
}

/// `step_retrying`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRetrying {
    /// The step.
    pub step: StepId,
    /// The attempt that failed.
    pub attempt: u32,
    /// How it ended.
    pub status: StepStatus,
    /// Why.
    pub error: Option<String>,
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// The HTTP status.
    pub http_status: Option<u16>,
    /// The wait before the next attempt.
    pub delay_ms: u64,
}

/// `step_finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepFinished {
    /// The step.
    pub step: StepId,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made (0 when it ended before its first).
    pub attempts: u32,
    /// Time taken.
    pub duration_ms: u64,
    /// What the last attempt captured; absent when the step ended without
    /// one to report (before any attempt, or cancelled while waiting to retry).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Captured>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the run goes on despite this failure; written with the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
}

/// What an attempt captured (each text capped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Captured {
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// The HTTP status.
    pub http_status: Option<u16>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The HTTP response body, when there was one.
    pub body: Option<String>,
}

/// `step_skipped`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSkipped {
    /// The step.
    pub step: StepId,
    /// `skipped` or `cancelled`.
    pub status: StepStatus,
    /// Why.
    pub reason: String,
}

/// `step_simulated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSimulated {
    /// The step.
    pub step: StepId,
    /// The rendered command or request it would have run.
    pub action: Value,
}

/// `notification`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The step.
    pub step: StepId,
    /// `console`, `slack`, `teams`, `pagerduty` or `webhook`.
    pub target: String,
    /// What the console showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The service's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

/// `run_cancelled`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunCancelled {
    /// `SIGINT`, `SIGTERM`, or the timeout reached.
    pub signal: String,
}

/// `run_finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// How it ended.
    pub status: RunStatus,
    /// This attempt's wall time.
    pub duration_ms: u64,
}

/// `engine_error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineError {
    /// What failed.
    pub error: String,
}
