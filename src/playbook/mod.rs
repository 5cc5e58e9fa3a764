//! Playbooks: the file format ([`model`], and [`test_format`] for the
//! inline `tests:`), reading them from disk ([`load`]), and checking them
//! into runnable [`Playbook`]s ([`validate`]) whose label matchers are
//! compiled ([`matcher`]) and whose tests are checked ([`test_check`]).
//!
//! A [`Playbook`] only exists after validation succeeded for its file, so the
//! engine never sees an unknown `needs`, a cycle or an unparsable duration.
//! It stands on its own: callers read its resolved fields, never the file's
//! raw mirror.

pub mod index;
pub mod limit;
pub mod load;
pub mod matcher;
pub mod model;
pub mod test_check;
pub mod test_format;
pub mod validate;

use std::time::Duration;

use serde::Serialize;

use indexmap::IndexMap;

use crate::diagnostic::Diagnostic;
use crate::yaml::Pos;

pub use crate::id::StepId;
use matcher::Matcher;
use model::{RawDrillNotify, RawHttp, RawInput, RawNotify, Trigger};

/// How long an unattended `confirm` waits for an answer when the step sets no `confirm_timeout`.
pub const DEFAULT_CONFIRM_TIMEOUT: Duration = Duration::from_secs(30 * 60);

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

/// The program a process step runs, its templates not yet rendered.
#[derive(Clone, Debug)]
pub enum Program {
    /// `shell:`: a script for the step's interpreter (`bash -e -o pipefail -c` by default).
    Shell(String),
    /// `command:`: an argv run without a shell.
    Command(Vec<String>),
}

/// A `shell:` or `command:` step's process.
#[derive(Clone, Debug)]
pub struct Process {
    /// What runs.
    pub program: Program,
    /// Environment templates by variable name.
    pub env: IndexMap<String, String>,
    /// Working directory template.
    pub cwd: Option<String>,
    /// `shell_interpreter`: the argv a `shell:` script is appended to; the default when `None`.
    pub interpreter: Option<Vec<String>>,
}

/// A step's one action, as written (templates render at run time).
#[derive(Clone, Debug)]
pub enum StepAction {
    /// `shell:` or `command:`.
    Process(Process),
    /// `http:`.
    Http(Box<RawHttp>),
    /// `notify:`.
    Notify(Box<RawNotify>),
}

impl StepAction {
    /// What kind of action this is.
    pub fn kind(&self) -> ActionKind {
        match self {
            StepAction::Process(_) => ActionKind::Shell,
            StepAction::Http(_) => ActionKind::Http,
            StepAction::Notify(_) => ActionKind::Notify,
        }
    }

    /// Whether running it sends an HTTP request (an `http` step, or a
    /// notification to a service rather than the console).
    pub fn posts(&self) -> bool {
        match self {
            StepAction::Process(_) => false,
            StepAction::Http(_) => true,
            StepAction::Notify(n) => n.console.is_none(),
        }
    }
}

/// A checked step.
#[derive(Clone, Debug)]
pub struct Step {
    /// Its id.
    pub id: StepId,
    /// What it does.
    pub action: StepAction,
    /// Indexes of the steps it needs, in the playbook's step list.
    pub needs: Vec<usize>,
    /// Indexes of the steps whose outputs its templates read (`steps.NAME`);
    /// `None` when one reads `steps` as a whole. Only these outputs are
    /// handed to the step, so a long run does not copy every output into
    /// every step.
    pub reads: Option<Vec<usize>>,
    /// When it runs relative to the outcome of its needs.
    pub trigger: Trigger,
    /// The `when` expression; the step is skipped when it is false.
    pub when: Option<String>,
    /// The question (a template) asked before it runs.
    pub confirm: Option<String>,
    /// How long an unattended question waits for `irctl approve`.
    pub confirm_timeout: Duration,
    /// Resolved timeout.
    pub timeout: Duration,
    /// Resolved retry policy.
    pub retry: RetryPolicy,
    /// A failure of this step does not fail the run.
    pub continue_on_error: bool,
    /// In a drill, record the rendered action instead of executing it.
    pub simulate_in_drill: bool,
    /// Running it twice is safe (`irctl resume` asks first when it is not).
    pub idempotent: bool,
    /// Its output is a key finding the postmortem quotes.
    pub report: bool,
}

impl Step {
    /// What kind of action it runs.
    pub fn kind(&self) -> ActionKind {
        self.action.kind()
    }
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
    pub notify: Option<RawDrillNotify>,
    /// Where the incident is written, for findings about it.
    pub incident_pos: Pos,
}

/// A validated playbook, ready to match and run.
#[derive(Clone, Debug)]
pub struct Playbook {
    /// Its name.
    pub name: String,
    /// Where its name is written, for findings about the whole playbook.
    pub name_pos: Pos,
    /// The one-line title responders see.
    pub title: String,
    /// The team it routes to.
    pub owner: Option<String>,
    /// Among matching playbooks the highest priority wins.
    pub priority: i64,
    /// Whether `irctl serve` may start it unattended (`auto: true`).
    pub auto: bool,
    /// Remediation (one per incident) or routing (every matching one).
    pub kind: model::PlaybookKind,
    /// `once_within`, `max_runs` and `concurrency`.
    pub limits: limit::Limits,
    /// Parsed `match.labels`.
    pub matchers: Vec<Matcher>,
    /// `match.labels` as written.
    pub labels: Vec<String>,
    /// The `match.when` expression.
    pub when: Option<String>,
    /// `match.per_alert`: matched, and run, once per firing alert.
    pub per_alert: bool,
    /// Declared inputs, in file order.
    pub inputs: IndexMap<String, RawInput>,
    /// Names of the secrets it needs.
    pub secrets: Vec<String>,
    /// Steps in file order; `needs` are indexes into this list.
    pub steps: Vec<Step>,
    /// `on_resolved` steps, in file order; `needs` index this list.
    pub on_resolved: Vec<Step>,
    /// Run-level timeout.
    pub timeout: Option<Duration>,
    /// The drill, when there is one.
    pub drill: Option<Drill>,
    /// Where approval requests are sent (`approvals.notify`).
    pub approvals: Option<RawNotify>,
    /// Cancel a run in flight when its incident resolves.
    pub cancel_on_resolve: bool,
    /// Its inline `tests:`, checked.
    pub tests: Vec<test_check::Case>,
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

    /// The playbook whose steps are its `on_resolved` steps: what runs (and
    /// is resumed) for a resolution.
    pub fn on_resolved_view(&self) -> Playbook {
        let mut p = self.clone();
        p.steps = std::mem::take(&mut p.on_resolved);
        p.tests.clear();
        p.drill = None;
        p
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

/// The error for a playbook name that is not in `known`, with a suggestion.
pub fn unknown_playbook<'a>(name: &str, known: impl Iterator<Item = &'a str>) -> anyhow::Error {
    let help = crate::diagnostic::did_you_mean(name, known)
        .map(|h| format!("; {h}"))
        .unwrap_or_default();
    anyhow::anyhow!("no playbook named `{name}`{help}")
}
