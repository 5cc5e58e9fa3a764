//! Payloads of the decisions on whether something runs: a step's `confirm`
//! answered or waiting for `irctl approve` (in a run's timeline), and a
//! playbook not run because its payload repeated or a limit held (in the
//! incident log, as `irctl run` and `irctl serve` decide).

use serde::{Deserialize, Serialize};

use crate::id::StepId;

/// `confirmation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The step.
    pub step: StepId,
    /// What was asked.
    pub question: String,
    /// `yes` or `no`.
    pub answer: String,
    /// Who answered.
    pub by: String,
    /// How (`tty`, `--yes`, `irctl approve`, or the timeout).
    pub via: String,
    /// Why, as the answerer said (`irctl approve --reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `approval_requested`: nobody could be asked on a terminal, so the step
/// waits for an answer given with `irctl approve` from another process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    /// The step.
    pub step: StepId,
    /// What is asked.
    pub question: String,
    /// How long it waits before the step is declined.
    pub timeout_ms: u64,
    /// When it stops waiting (RFC 3339).
    pub deadline: String,
    /// The command that approves.
    pub approve: String,
    /// The command that declines.
    pub deny: String,
}

/// `alert_repeated`: the payload of an incident whose playbook already ran
/// in this episode arrived again, and nothing was run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRepeated {
    /// When the repeat arrived (RFC 3339).
    pub at: String,
    /// Who ran `irctl run`.
    pub by: String,
    /// The payload's format.
    pub source: String,
    /// The playbook that was not run again.
    pub playbook: String,
    /// The earlier run of it; absent while that run is still being started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_run: Option<String>,
}

/// `run_throttled`: a playbook was not run for this incident because one
/// of its limits across incidents held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunThrottled {
    /// When it was decided (RFC 3339).
    pub at: String,
    /// Who ran `irctl run`.
    pub by: String,
    /// The payload's format.
    pub source: String,
    /// The playbook that was not run.
    pub playbook: String,
    /// The limit that held, as written (`once_within: 30m`,
    /// `max_runs: 3 per 1h`, `concurrency: 2`).
    pub rule: String,
    /// When the playbook may run again (RFC 3339); absent for `concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
}
