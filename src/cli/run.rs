//! Arguments of the commands that execute a playbook's steps, for real or
//! simulated: `run`, `resume`, `approve`, `drill` and `test`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{ExecArgs, IncidentArgs, SourceArgs, StateArgs};

/// Arguments of `run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run this playbook, even if its matchers do not hold (recorded as a warning); default: the best match.
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: Option<String>,
    #[command(flatten)]
    pub incident: IncidentArgs,
    /// An input value `name=value` (repeatable).
    #[arg(long = "input", value_name = "NAME=VALUE")]
    pub inputs: Vec<String>,
    /// Print the plan (levels, rendered commands and requests) and execute nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Approve every `confirm` step without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// When several playbooks tie for the best match, run each of them.
    #[arg(long, conflicts_with = "playbook")]
    pub all_matching: bool,
    /// Run even if the playbook already ran for this episode of the incident (a repeated payload is otherwise recorded and not run).
    #[arg(long)]
    pub again: bool,
    /// Run the playbook's `steps` even for a resolved or acknowledged payload (recorded as forced).
    #[arg(long)]
    pub force: bool,
    /// Refuse to run a playbook that is not `auto: true` (what `irctl serve` passes).
    #[arg(long)]
    pub auto_only: bool,
    /// What a `confirm` step does when there is no terminal to ask on: fail at once, or wait for `irctl approve`.
    #[arg(long, value_enum, default_value_t = ApprovalMode::Fail, value_name = "MODE")]
    pub approval: ApprovalMode,
    /// Append what became of each playbook (ran, repeat, throttled) as JSON lines to FILE (what `irctl serve` passes, for its metrics).
    #[arg(long, value_name = "FILE", hide = true)]
    pub outcome_file: Option<std::path::PathBuf>,
    /// When a playbook has no free `concurrency` slot, do not wait: run the rest, record nothing for it, report it `deferred` and exit 75 (what `irctl serve` passes).
    #[arg(long, hide = true)]
    pub defer_slots: bool,
    /// Of the playbooks chosen, run only this one (repeatable; `irctl serve` retrying a deferred delivery).
    #[arg(long = "only-playbook", value_name = "NAME", hide = true)]
    pub only_playbooks: Vec<String>,
    /// The delivery has waited for a slot since this time (Unix milliseconds), for the recorded wait and its limit.
    #[arg(long, value_name = "MS", hide = true)]
    pub waiting_since: Option<i64>,
    /// An older delivery waits for a slot of this playbook: defer rather than take one first (repeatable).
    #[arg(long = "behind", value_name = "NAME", hide = true)]
    pub behind: Vec<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// What a `confirm` step does when there is no terminal to ask on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ApprovalMode {
    /// Fail the step at once, so cron and CI never hang (the default).
    #[default]
    Fail,
    /// Record `approval_requested` with the commands, and wait for `irctl approve` up to the step's `confirm_timeout`.
    Wait,
}

/// Arguments of `resume`.
#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run to continue (`irctl run` prints it first).
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,
    /// Resume even though the playbook file changed since the run (its blob differs).
    #[arg(long)]
    pub force: bool,
    /// Approve every `confirm` step, and re-running `idempotent: false` steps, without asking.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// What a `confirm` step does when there is no terminal to ask on: fail at once, or wait for `irctl approve`.
    #[arg(long, value_enum, default_value_t = ApprovalMode::Fail, value_name = "MODE")]
    pub approval: ApprovalMode,
    #[command(flatten)]
    pub exec: ExecArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The run (`irctl run` prints it first; a unique start, or its last six hex digits).
    #[arg(value_name = "RUN_ID")]
    pub run_id: String,
    /// The step that waits.
    #[arg(value_name = "STEP")]
    pub step: String,
    /// Decline instead of approving.
    #[arg(long)]
    pub deny: bool,
    /// Who answers, for the record [default: IRCTL_ACTOR, else the login].
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// Why, for the record.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Format of a drill report file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DrillReportFormat {
    /// JUnit XML.
    Junit,
    /// JSON.
    Json,
}

/// Arguments of `drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// Playbooks to drill, by name.
    #[arg(value_name = "PLAYBOOK", conflicts_with_all = ["all", "due"])]
    pub names: Vec<String>,
    /// Drill every playbook that has a `drill` section.
    #[arg(long, conflicts_with = "due")]
    pub all: bool,
    /// Only drills whose `schedule` fired since their last recorded drill (for an hourly cron job).
    #[arg(long)]
    pub due: bool,
    /// Write a report: JUnit XML (`*.xml`) or JSON (`*.json`).
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// The report's format, when the file name does not say.
    #[arg(long, value_enum, requires = "report")]
    pub report_format: Option<DrillReportFormat>,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// For tests only: the drill clock's current time (RFC 3339), for `--due`
    /// and the record; overrides `IRCTL_NOW`.
    #[arg(long, value_name = "RFC3339", hide = true)]
    pub now: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Test only these playbooks (by name); default every playbook with tests.
    #[arg(value_name = "PLAYBOOK")]
    pub names: Vec<String>,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// List the steps and `trigger`/`when` branches no test exercised.
    #[arg(long)]
    pub coverage: bool,
    /// Directory of playbooks and their tests (`*.yaml`, `*.yml`, searched recursively).
    #[arg(
        long,
        env = "IRCTL_PLAYBOOKS",
        default_value = "playbooks",
        value_name = "DIR"
    )]
    pub playbooks: PathBuf,
    /// The service catalog that aims `team: owner|impacted` steps, as for `irctl run` [default: `catalog-info.yaml` at the top of the playbook folder].
    #[arg(long, env = "IRCTL_CATALOG", value_name = "PATH|REPO@REF")]
    pub catalog: Option<String>,
    /// Refused: tests are read from a directory. Hidden from the help, and
    /// kept so that `--repo` (or an exported `IRCTL_REPO`) gets a clear
    /// error instead of a silent `./playbooks`.
    #[arg(long, env = "IRCTL_REPO", hide = true, hide_env_values = true)]
    pub repo: Option<String>,
}
