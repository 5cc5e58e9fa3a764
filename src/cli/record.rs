//! Arguments of the commands that read or add to the record of runs and
//! incidents: `runs`, `stats`, `timeline`, `note`, `resolve`, `ingest`,
//! `postmortem`, `graph` and `handoff`.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

use super::{OutputFormat, SourceArgs, StateArgs};

/// Arguments of `runs`.
#[derive(Debug, Args)]
pub struct RunsArgs {
    /// Only runs of this incident (its id or file-safe id).
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// Only runs of this playbook.
    #[arg(long, value_name = "NAME")]
    pub playbook: Option<String>,
    /// Only runs started since: a duration back from now (`7d`, `12h`) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Also list repeats: payloads recorded as `alert_repeated` because the playbook already ran for the episode.
    #[arg(long)]
    pub all: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Only incidents first seen since: a duration back from now (`30d`) or an RFC 3339 time.
    #[arg(long, value_name = "WHEN")]
    pub since: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Output format of `timeline`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TimelineFormat {
    /// A table for people.
    Table,
    /// The raw events, as a JSON array.
    Json,
    /// A Markdown table, for a postmortem or a ticket.
    Markdown,
    /// One self-contained HTML page: the Gantt chart as SVG, the events below it.
    Html,
}

/// Arguments of `timeline`.
#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// `verify`: check the hash chain.
    #[command(subcommand)]
    pub command: Option<TimelineCommand>,
    /// The run to show.
    #[arg(
        value_name = "RUN_ID",
        required_unless_present = "incident",
        conflicts_with = "incident"
    )]
    pub run_id: Option<String>,
    /// Show every run and note of this incident instead, merged in time order.
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = TimelineFormat::Table)]
    pub format: TimelineFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Subcommands of `timeline`.
#[derive(Debug, Subcommand)]
pub enum TimelineCommand {
    /// Prove a timeline untouched, or name the first event altered, removed or reordered.
    #[command(
        after_help = "Examples:\n  irctl timeline verify 20240101T100000Z-a1b2c3\n  irctl timeline verify 20240101T100000Z-a1b2c3 --expect sha256:9f2c…   # the hash the run printed\n  IRCTL_TIMELINE_KEY=… irctl timeline verify --incident INCIDENT_ID   # every run and the notes\n\nExit status: 0 intact and complete, 1 a chain is broken, incomplete (no `run_finished`), keyed without the key, not keyed although a key is set, or not ending in the `--expect` hash; 2 no such run."
    )]
    Verify(VerifyArgs),
}

/// Arguments of `timeline verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The run to verify.
    #[arg(
        value_name = "RUN_ID",
        required_unless_present = "incident",
        conflicts_with = "incident"
    )]
    pub run_id: Option<String>,
    /// Verify every run of this incident and its incident log.
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// Fail unless the run's final hash is HASH (as `irctl run` printed it
    /// or a notification carried it: `sha256:…`, `hmac-sha256:…`, or bare hex).
    #[arg(long, value_name = "HASH", conflicts_with = "incident")]
    pub expect: Option<String>,
    /// Read the timeline key (`IRCTL_TIMELINE_KEY`) from this dotenv file.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `note`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("target").required(true).args(["incident", "run"]))]
pub struct NoteArgs {
    /// What you saw or did.
    #[arg(value_name = "TEXT")]
    pub text: String,
    /// The incident (its id, file-safe id or short id).
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    /// Attach the note to this run (and so to its incident).
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// Who writes it [default: `IRCTL_ACTOR`, else your login].
    #[arg(long)]
    pub author: Option<String>,
    /// When it happened, if not now (RFC 3339; not in the future).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// This is when the impact was mitigated (the postmortem's "mitigated" time).
    #[arg(long)]
    pub mitigated: bool,
    /// Start the record of an incident nothing knows yet (without it, an unknown `--incident` is an error).
    #[arg(long, requires = "incident")]
    pub create: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `resolve`.
#[derive(Debug, Args)]
pub struct ResolveArgs {
    /// The incident (its id, file-safe id or short id).
    #[arg(long, value_name = "ID")]
    pub incident: String,
    /// When it was resolved, if not now (RFC 3339; not in the future).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// One line on how it was resolved.
    #[arg(long, value_name = "TEXT")]
    pub summary: Option<String>,
    /// Who resolved it [default: `IRCTL_ACTOR`, else your login].
    #[arg(long)]
    pub author: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Alert payload (Alertmanager, Grafana, PagerDuty, CloudEvents or irctl JSON/YAML); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub incident: PathBuf,
    /// Force the payload format instead of detecting it.
    #[arg(long, value_name = "FORMAT")]
    pub incident_format: Option<String>,
    /// When it was detected or resolved (RFC 3339; not in the future) [default: the payload's end time for a resolution, else now].
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Output format of `postmortem`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PostmortemFormat {
    /// The rendered Markdown draft.
    Markdown,
    /// The data the template sees, as JSON (for writing templates).
    Json,
    /// One self-contained HTML page: the Gantt chart as SVG, key times, steps, timeline.
    Html,
}

/// Arguments of `postmortem`.
#[derive(Debug, Args)]
pub struct PostmortemArgs {
    /// The incident (its id, file-safe id or short id).
    #[arg(long, value_name = "ID")]
    pub incident: String,
    /// Write to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// A minijinja template over the same data, instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = PostmortemFormat::Markdown)]
    pub format: PostmortemFormat,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Output format of `graph`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum GraphFormat {
    /// A Mermaid `flowchart` (GitHub, GitLab and most wikis render it in Markdown).
    Mermaid,
    /// Graphviz DOT (`dot -Tsvg`).
    Dot,
}

/// Arguments of `graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// The playbook: its name in the playbook source, or a file path.
    #[arg(
        value_name = "PLAYBOOK",
        required_unless_present = "run",
        conflicts_with = "run"
    )]
    pub playbook: Option<String>,
    /// Draw this run's DAG coloured by what happened (a resumed run's combined outcome).
    #[arg(long, value_name = "RUN_ID")]
    pub run: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    #[command(flatten)]
    pub state: StateArgs,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `handoff`.
#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// `accept` or `remind`.
    #[command(subcommand)]
    pub command: Option<HandoffCommand>,
    /// The incident (its id, file-safe id or short id).
    #[arg(long, value_name = "ID", required = true)]
    pub incident: Option<String>,
    /// The receiving team: its Backstage reference (`group:default/dba`, or `dba`).
    #[arg(long, value_name = "TEAM", required = true)]
    pub to: Option<String>,
    /// What you want the team to know first.
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// Who hands off [default: `IRCTL_ACTOR`, else your login].
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    /// Announce the hand-off again when it is not accepted after this long
    /// (`irctl handoff remind`) [default: the team's `remind_after`, else 15m].
    #[arg(long, value_name = "DURATION")]
    pub remind_after: Option<String>,
    /// Write the Markdown packet here [default: beside the incident's log].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// A dotenv file with the secrets the team's channels name.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
}

/// Subcommands of `handoff`.
#[derive(Debug, Subcommand)]
pub enum HandoffCommand {
    /// Accept the incident's open hand-off for the receiving team: it owns the incident from now on.
    Accept(HandoffAcceptArgs),
    /// Announce unaccepted hand-offs again, and escalate to the team's PagerDuty channels when due; safe to run from cron as often as you like.
    Remind(HandoffRemindArgs),
}

/// Arguments of `handoff accept`.
#[derive(Debug, Args)]
pub struct HandoffAcceptArgs {
    /// The incident (its id, file-safe id or short id).
    #[arg(long, value_name = "ID")]
    pub incident: String,
    /// Who accepts, for the team [default: `IRCTL_ACTOR`, else your login].
    #[arg(long = "as", value_name = "NAME")]
    pub by: Option<String>,
    #[command(flatten)]
    pub state: StateArgs,
}

/// Arguments of `handoff remind`.
#[derive(Debug, Args)]
pub struct HandoffRemindArgs {
    /// Only this incident [default: every incident with an open hand-off].
    #[arg(long, value_name = "ID")]
    pub incident: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub state: StateArgs,
    /// A dotenv file with the secrets the teams' channels name.
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
}
