//! Playbooks: the file format ([`model`]), reading them from disk ([`load`]),
//! and checking them into runnable [`Playbook`]s ([`validate`]) whose label
//! matchers are compiled ([`matcher`]).
//!
//! A [`Playbook`] only exists after validation succeeded for its file, so the
//! engine never sees an unknown `needs`, a cycle or an unparsable duration.

pub mod index;
pub mod load;
pub mod matcher;
pub mod model;
pub mod validate;

use std::time::Duration;

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use matcher::Matcher;
use model::{RawPlaybook, RawStep};

/// Step timeout when neither the step nor `defaults` set one.
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(300);

pub use crate::timeline::Provenance;

/// A retry policy with durations resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub attempts: u32,
    /// Delay before the second attempt.
    pub backoff: Duration,
    /// Cap on the delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
        }
    }
}

/// What a step does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    /// `shell:` or `command:`.
    Shell,
    /// `http:`.
    Http,
    /// `notify:`.
    Notify,
}

/// A checked step.
#[derive(Clone, Debug)]
pub struct Step {
    /// The step as written.
    pub raw: RawStep,
    /// Its id.
    pub id: String,
    /// Indexes of the steps it needs, in the playbook's step list.
    pub needs: Vec<usize>,
    /// Indexes of the steps whose outputs its templates read (`steps.NAME`);
    /// `None` when one reads `steps` as a whole. Only these outputs are
    /// handed to the step, so a long run does not copy every output into
    /// every step.
    pub reads: Option<Vec<usize>>,
    /// What kind of action it runs.
    pub kind: ActionKind,
    /// Resolved timeout.
    pub timeout: Duration,
    /// Resolved retry policy.
    pub retry: RetryPolicy,
}

/// A checked drill section.
#[derive(Clone, Debug)]
pub struct Drill {
    /// The cron schedule as written.
    pub schedule: Option<String>,
    /// The synthetic incident, parsed once when the playbook is checked.
    pub incident: crate::incident::Incident,
    /// Upper bound on the drill's duration.
    pub max_duration: Option<Duration>,
    /// Inputs for the drill run.
    pub inputs: indexmap::IndexMap<String, serde_json::Value>,
    /// Notification destinations that replace the real ones in a drill.
    pub notify: Option<model::RawDrillNotify>,
}

/// A validated playbook, ready to match and run.
#[derive(Clone, Debug)]
pub struct Playbook {
    /// Its name.
    pub name: String,
    /// The file as written.
    pub raw: RawPlaybook,
    /// Parsed `match.labels`.
    pub matchers: Vec<Matcher>,
    /// Steps in file order; `needs` are indexes into this list.
    pub steps: Vec<Step>,
    /// Run-level timeout.
    pub timeout: Option<Duration>,
    /// The drill, when there is one.
    pub drill: Option<Drill>,
    /// Where the file came from.
    pub provenance: Provenance,
}

impl Playbook {
    /// The step with `id`.
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|s| s.id == id)
    }

    /// The file path as shown to users.
    pub fn file(&self) -> &str {
        &self.provenance.path
    }
}

/// Everything loaded from a playbook source: the valid playbooks and every finding.
#[derive(Debug, Default)]
pub struct PlaybookSet {
    /// Playbooks whose files had no errors.
    pub playbooks: Vec<Playbook>,
    /// All findings, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// Every file that was read, as shown to users.
    pub files: Vec<String>,
    /// File text by path, for rendering diagnostics with source lines.
    pub sources: std::collections::HashMap<String, String>,
}

impl PlaybookSet {
    /// The playbook named `name`.
    pub fn get(&self, name: &str) -> Option<&Playbook> {
        self.playbooks.iter().find(|p| p.name == name)
    }

    /// The files with an error (which yield no playbook), each once, in
    /// the order their findings come.
    pub fn broken_files(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.diagnostics
            .iter()
            .filter(|d| d.is_error())
            .map(|d| d.file.as_str())
            .filter(|f| seen.insert(*f))
            .collect()
    }

    /// Whether any finding is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}
