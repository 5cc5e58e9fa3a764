//! What an `irctl run` started by serve decided, told back to serve for
//! `/metrics` and for the delivery's fate: one JSON line per playbook (ran,
//! repeat, in progress, throttled, not auto, deferred) in a file serve names
//! with `--outcome-file`.
//!
//! The child knows what happened — the lifecycle decision, each step's
//! kind, status, duration and why it was skipped — and serve only knows the
//! exit code. Every value that can come from a playbook or a payload is
//! reduced here to a small fixed vocabulary (skip reasons, decision kinds)
//! or kept as a playbook name, so metric labels stay few.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::engine::StepReport;
use crate::playbook::{ActionKind, Playbook};
use crate::timeline::StepStatus;

/// Most lines read from one outcome file.
const MAX_OUTCOMES: usize = 64;
/// Most steps reported for one run.
const MAX_STEPS: usize = 512;
/// Largest outcome file read.
const MAX_BYTES: u64 = 4 << 20;

/// The exit code of an `irctl run --defer-slots` that ran everything it
/// could and deferred the rest (`EX_TEMPFAIL`): the delivery is not done.
pub const EXIT_DEFERRED: u8 = 75;

/// `decision` of a playbook that had no free `concurrency` slot under
/// `--defer-slots`: nothing of it ran or was counted, and serve queues the
/// delivery again for it.
pub const DEFERRED: &str = "deferred";

/// `decision` of a playbook `--auto-only` did not run because it is not
/// `auto: true`: left to people, not a failure.
pub const NOT_AUTO: &str = "not_auto";

/// `decision` (with no playbook) of a firing payload that is a late copy
/// of a resolved incident: nothing was run or recorded.
pub const LATE: &str = "late_copy";

/// A delivery's outcome when it was a late copy of a resolved incident.
pub const SKIPPED_LATE: &str = "skipped: late copy";

/// What became of one playbook for one delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// The playbook.
    pub playbook: String,
    /// `ran`, `repeat`, `in_progress`, `throttled`, [`NOT_AUTO`] or [`DEFERRED`].
    pub decision: String,
    /// For `throttled`: which limit (`once_within`, `max_runs`,
    /// `concurrency`); for [`DEFERRED`]: `concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `ran`: how the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// For `ran`: its steps.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepOutcome>,
}

/// One step of a run, for the duration histogram and the skip counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// `shell`, `http` or `notify`.
    pub kind: String,
    /// How it ended.
    pub status: String,
    /// Time taken.
    pub duration_ms: u64,
    /// For a skipped or cancelled step: why, as one of [`skip_reason`]'s words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
}

impl Outcome {
    /// A decision that ran nothing.
    pub fn decided(playbook: &str, decision: &str, reason: Option<&str>) -> Outcome {
        Outcome {
            playbook: playbook.to_string(),
            decision: decision.to_string(),
            reason: reason.map(str::to_string),
            status: None,
            steps: Vec::new(),
        }
    }

    /// A run of `playbook` that ended as `status` with `steps`.
    pub fn ran(playbook: &Playbook, status: &str, steps: &[StepReport]) -> Outcome {
        let steps = steps
            .iter()
            .take(MAX_STEPS)
            .map(|s| {
                let kind = playbook
                    .steps
                    .iter()
                    .find(|p| p.id == s.id)
                    .map_or("unknown", |p| match p.kind() {
                        ActionKind::Shell => "shell",
                        ActionKind::Http => "http",
                        ActionKind::Notify => "notify",
                    });
                let skip = matches!(s.status, StepStatus::Skipped | StepStatus::Cancelled)
                    .then(|| skip_reason(s.status, s.reason.as_deref().unwrap_or("")).to_string());
                StepOutcome {
                    kind: kind.to_string(),
                    status: s.status.as_str().to_string(),
                    duration_ms: s.duration_ms,
                    skip,
                }
            })
            .collect();
        Outcome {
            playbook: playbook.name.clone(),
            decision: "ran".into(),
            reason: None,
            status: Some(status.to_string()),
            steps,
        }
    }
}

/// Why a step did not run, in a few words: `when_false`, `upstream_failed`,
/// `need_skipped`, `nothing_failed` (an `on_failure` step), `run_cancelled`,
/// `earlier_attempt` (a resumed run), or `other`.
pub fn skip_reason(status: StepStatus, reason: &str) -> &'static str {
    if status == StepStatus::Cancelled || reason.starts_with("run cancelled") {
        "run_cancelled"
    } else if reason.starts_with("when was false") {
        "when_false"
    } else if reason.starts_with("trigger on_failure") {
        "nothing_failed"
    } else if reason.starts_with("succeeded in an earlier attempt") {
        "earlier_attempt"
    } else if reason.starts_with("need ") && reason.ends_with(" was skipped") {
        // Step ids hold no spaces, so this is `need ID was skipped` exactly.
        "need_skipped"
    } else if reason.contains("need ") {
        "upstream_failed"
    } else {
        "other"
    }
}

/// Appends `outcome` to `path`.
pub fn append(path: &Path, outcome: &Outcome) -> anyhow::Result<()> {
    let mut line = serde_json::to_string(outcome)?;
    line.push('\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| format!("cannot write outcome file `{}`", path.display()))
}

/// The outcomes in `path` (at most [`MAX_OUTCOMES`]); a missing, oversized
/// or unreadable file, or a line that does not parse, yields nothing for it.
pub fn read(path: &Path) -> Vec<Outcome> {
    let Ok(text) = crate::capped::read_to_string(path, MAX_BYTES) else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .take(MAX_OUTCOMES)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_reasons_fall_into_a_few_words() {
        let s = StepStatus::Skipped;
        assert_eq!(skip_reason(s, "when was false: x > 1"), "when_false");
        assert_eq!(skip_reason(s, "need check failed"), "upstream_failed");
        assert_eq!(
            skip_reason(s, "need b was skipped (a timed out)"),
            "upstream_failed"
        );
        assert_eq!(skip_reason(s, "need b was skipped"), "need_skipped");
        assert_eq!(
            skip_reason(s, "trigger on_failure: nothing before it failed"),
            "nothing_failed"
        );
        assert_eq!(
            skip_reason(
                StepStatus::Cancelled,
                "run cancelled (SIGTERM) before it started"
            ),
            "run_cancelled"
        );
        assert_eq!(skip_reason(s, "\"}\n{evil"), "other");
    }
}
