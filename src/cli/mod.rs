//! Command-line declarations: one struct per subcommand, with the help text
//! users see. No behaviour lives here; `cmd/` does the work.
//!
//! This file holds the top level (`Cli`, the `Command` list with each
//! command's examples) and the argument groups several commands flatten in;
//! the per-command structs live in submodules by area and are re-exported
//! here, so callers name them `crate::cli::X`.

mod playbook;
mod record;
mod run;
mod serve;
mod source;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::ui::ColorChoice;

pub use self::playbook::{HistoryArgs, ListArgs, MatchArgs, ValidateArgs, ValidateFormat, WhoArgs};
pub use self::record::{
    GraphArgs, GraphFormat, HandoffAcceptArgs, HandoffArgs, HandoffCommand, HandoffRemindArgs,
    IngestArgs, NoteArgs, PostmortemArgs, PostmortemFormat, ResolveArgs, RunsArgs, StatsArgs,
    TimelineArgs, TimelineCommand, TimelineFormat, VerifyArgs,
};
pub use self::run::{
    ApprovalMode, ApproveArgs, DrillArgs, DrillReportFormat, ResumeArgs, RunArgs, TestArgs,
};
pub use self::serve::ServeArgs;
pub use self::source::{SourceArgs, repo_on_command_line};

/// Playbook-as-code incident response: match an alert to a playbook, run it as a DAG, keep the timeline.
#[derive(Debug, Parser)]
#[command(
    name = "irctl",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// When to use colors: auto (a terminal, and `NO_COLOR` unset), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check playbooks for every mistake that can be found without running them.
    #[command(
        after_help = "Examples:\n  irctl validate\n  irctl validate playbooks/ --deny-warnings\n  irctl validate --format github   # inline annotations in GitHub Actions\n  irctl validate --changed-since origin/main   # CI: findings in changed files only\n\nExit status: 0 valid, 1 findings, 2 usage error or unreadable path."
    )]
    Validate(ValidateArgs),
    /// List the playbooks.
    #[command(
        after_help = "Examples:\n  irctl list\n  irctl list --format json | jq -r '.[].name'\n  irctl list --repo https://git.example.com/ops/playbooks.git --ref v1.4.0\n  irctl list --repo git@git.example.com:ops/playbooks.git --offline"
    )]
    List(ListArgs),
    /// Show which playbook an incident selects, and why the others did not match.
    #[command(
        name = "match",
        after_help = "Examples:\n  irctl match --incident examples/incidents/disk-filling.json\n  curl -s … | irctl match --incident -\n  irctl match --label alertname=TargetDown --label job=node\n\nExit status: 0 when a playbook matched, 1 when none did, 2 for bad input."
    )]
    Match(MatchArgs),
    /// Run the playbook for an incident: its steps as a DAG, recorded in a timeline.
    #[command(
        after_help = "Examples:\n  irctl run --incident examples/incidents/disk-filling.json\n  irctl run disk-filling-up --label instance=db-1:9100 --input threshold_percent=80\n  irctl run --incident alert.json --dry-run\n\nExit status: 0 succeeded, 1 a step failed or the run timed out (or no/ambiguous match, or the run is locked), 2 bad input, 130 interrupted."
    )]
    Run(RunArgs),
    /// Run the playbooks' tests: the real engine with canned step results, nothing executed.
    #[command(
        after_help = "Examples:\n  irctl test\n  irctl test pg-connections-saturated --coverage\n  irctl test --report junit.xml   # for CI test reports\n\nTests live in a playbook's `tests:` list or in a sibling `NAME.test.yaml`.\n\nExit status: 0 all passed, 1 a test failed, 2 a test file is invalid, a test is broken, or there is no test to run."
    )]
    Test(TestArgs),
    /// Run playbook drills: synthetic incidents through the real engine, remediation simulated.
    #[command(
        after_help = "Examples:\n  irctl drill disk-filling-up\n  irctl drill --all --report drills.xml\n  irctl drill --due            # hourly from cron: only the drills whose schedule came due\n\nExit status: 0 every drill passed (or none was due, or another `--due` batch is running), 1 a drill failed, 2 bad input, 130 interrupted."
    )]
    Drill(DrillArgs),
    /// Receive alert webhooks (Alertmanager, Grafana, PagerDuty, CloudEvents) and run their `auto: true` playbooks.
    #[command(
        after_help = "Examples:\n  irctl serve --listen 127.0.0.1:9095 --secrets-file /etc/irctl/serve.env\n  irctl serve --listen 0.0.0.0:9095 --repo https://git.example.com/ops/playbooks.git --max-runs 8\n  irctl serve --listen 127.0.0.1:9095 --insecure-no-auth   # local trials only\n\nCredentials (from `--secrets-file` or `IRCTL_SECRET_<NAME>`; `NAME_2` … `NAME_9` for rotation):\n  SERVE_BEARER_TOKEN         bearer token: Alertmanager, Grafana, CloudEvents, /api\n  SERVE_BASIC_AUTH           `user:password`, wherever a token is accepted\n  SERVE_GRAFANA_HMAC_SECRET  Grafana's HMAC signature secret\n  SERVE_PAGERDUTY_SECRET     PagerDuty V3 webhook signing secret\n  SERVE_SLACK_SIGNING_SECRET Slack app signing secret (Slack buttons)\n\nSIGHUP reloads the playbooks and mappings, the secrets file and the TLS files.\n\nExit status: 0 stopped by SIGTERM or SIGINT after draining, 2 bad flags, credentials, address or TLS files (missing, not PEM, key not matching the certificate)."
    )]
    Serve(ServeArgs),
    /// Approve (or `--deny`) a `confirm` step that waits for an answer: a run under `irctl serve`, or `irctl run --approval wait`.
    #[command(
        after_help = "Examples:\n  irctl approve 20250301T101500Z-a1b2c3 restart\n  irctl approve a1b2c3 restart --deny --reason \"not during the deploy\"\n  irctl approve 20250301T101500Z-a1b2c3 restart --as alice\n\nThe run id may be shortened to a unique start or its last six hex digits.\n\nExit status: 0 answered, 1 refused (the step is not waiting, the run is no longer running, or it was already answered), 2 bad input (unknown or ambiguous run, malformed step id)."
    )]
    Approve(ApproveArgs),
    /// Continue a failed, cancelled or killed run: succeeded steps are reused, the rest run again.
    #[command(
        after_help = "Examples:\n  irctl resume 20250301T101500Z-a1b2c3\n  irctl resume 20250301T101500Z-a1b2c3 --yes     # approve re-running `idempotent: false` steps\n  irctl resume 20250301T101500Z-a1b2c3 --force   # resume with the changed playbook file\n\nExit status: 0 succeeded, 1 a step failed or the run timed out (or the run is locked, or a repeat was not approved), 2 bad input (unknown run, run already succeeded, playbook changed without --force), 130 interrupted."
    )]
    Resume(ResumeArgs),
    /// Show the commits that changed a playbook's file, newest first.
    #[command(
        after_help = "Examples:\n  irctl history disk-filling-up\n  irctl history pg-connections-saturated --repo https://git.example.com/ops/playbooks.git --limit 5\n  irctl history disk-filling-up --format json\n\nExit status: 0 ok, 2 unknown playbook or not in a Git repository."
    )]
    History(HistoryArgs),
    /// List past runs: incident, playbook@commit, status, start, duration, drill.
    #[command(
        after_help = "Examples:\n  irctl runs\n  irctl runs --since 7d --playbook disk-filling-up\n  irctl runs --incident INCIDENT_ID --format json | jq -r '.[].run_id'"
    )]
    Runs(RunsArgs),
    /// Show a run's timeline, or an incident's (all its runs and notes, merged in time order).
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "Examples:\n  irctl timeline 20240101T100000Z-a1b2c3\n  irctl timeline --incident INCIDENT_ID --format markdown\n  irctl timeline 20240101T100000Z-a1b2c3 --format json | jq '.[] | select(.type == \"step_finished\")'\n  irctl timeline verify 20240101T100000Z-a1b2c3\n\nA torn last line (a killed process) is ignored with a warning.\n\nExit status: 0 shown, 2 no such run or incident."
    )]
    Timeline(TimelineArgs),
    /// Add a note to an incident's record: what a responder saw or did by hand.
    #[command(
        after_help = "Examples:\n  irctl note --incident INCIDENT_ID \"restarted pgbouncer on db-1 by hand\"\n  irctl note --run 20240101T100000Z-a1b2c3 --author alice \"error rate back to normal\" --mitigated\n  irctl note --incident INCIDENT_ID --at 2024-01-01T10:05:00Z \"paged the DBA\""
    )]
    Note(NoteArgs),
    /// Record that an incident is resolved.
    #[command(
        after_help = "Examples:\n  irctl resolve --incident INCIDENT_ID --summary \"pool size raised to 200\"\n  irctl resolve --incident INCIDENT_ID --at 2024-01-01T11:30:00Z"
    )]
    Resolve(ResolveArgs),
    /// Record an alert payload without running anything: firing records detection, resolved records resolution.
    #[command(
        after_help = "Examples:\n  irctl ingest --incident alertmanager-firing.json\n  curl -s … | irctl ingest --incident -\n  irctl ingest --incident pagerduty-resolved.json --at 2024-01-01T11:30:00Z"
    )]
    Ingest(IngestArgs),
    /// Write a postmortem draft (Markdown) for an incident: key times, MTTD/MTTR, timeline, what automation did.
    #[command(
        after_help = "Examples:\n  irctl postmortem --incident INCIDENT_ID -o postmortem.md\n  irctl postmortem --incident INCIDENT_ID --template our-format.md.j2\n  irctl postmortem --incident INCIDENT_ID --format json   # the data templates see"
    )]
    Postmortem(PostmortemArgs),
    /// Draw a playbook's DAG (Mermaid or Graphviz DOT), or a run's coloured by what happened.
    #[command(
        after_help = "Examples:\n  irctl graph disk-filling-up\n  irctl graph playbooks/db.yaml --format dot | dot -Tsvg > db.svg\n  irctl graph --run 20240101T100000Z-a1b2c3\n\nExit status: 0 drawn, 2 unknown playbook or run, or an invalid playbook file."
    )]
    Graph(GraphArgs),
    /// Hand an incident to another team with its whole story; the team owns it once it accepts.
    #[command(
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true,
        after_help = "Examples:\n  irctl handoff --incident 3f2a9c1d --to group:default/dba --message \"pool is fine, the disk is not\"\n  irctl handoff accept --incident 3f2a9c1d --as dana\n  irctl handoff remind        # from cron, every few minutes\n\nThe team's channels come from `teams.yaml` beside the playbooks (or `catalog/teams.yaml`).\n\nExit status: 0 sent (or accepted, or reminders done), 1 a channel did not take the message, 2 bad input (unknown incident or team, missing secret, nothing to accept)."
    )]
    Handoff(HandoffArgs),
    /// Summarise MTTD, MTTR and run outcomes across incidents (drills counted apart).
    #[command(after_help = "Examples:\n  irctl stats\n  irctl stats --since 30d --format json")]
    Stats(StatsArgs),
    /// Show who owns an incident (from the service catalog or CODEOWNERS), why, what it impacts, and the playbooks that would run.
    #[command(
        after_help = "Examples:\n  irctl who --incident examples/incidents/disk-filling.json\n  irctl who --label service=checkout --format json\n  irctl who --incident alert.json --catalog ../catalog/catalog-info.yaml\n\nThe catalog is `--catalog`, else `catalog-info.yaml` at the top of the playbook folder.\n\nExit status: 0 an owner was found, 1 none was, 2 bad input."
    )]
    Who(WhoArgs),
    /// Print the JSON Schema (draft-07) of the playbook format, for editors.
    #[command(
        after_help = "Example:\n  irctl schema > irctl.schema.json\n  # then, first line of a playbook:\n  # yaml-language-server: $schema=./irctl.schema.json"
    )]
    Schema,
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  irctl completions bash > /etc/bash_completion.d/irctl")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  irctl man > /usr/local/share/man/man1/irctl.1")]
    Man,
}

/// Shells with completion support.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

/// Table or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
}

/// Where runs, notes and their timelines (and the drill record) are kept.
#[derive(Debug, Args)]
pub struct StateArgs {
    /// Where runs, timelines, notes and drill records are kept [default: $XDG_STATE_HOME/irctl].
    #[arg(long, env = "IRCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

/// How `run`, `drill` and `resume` execute steps here: the same flags, env
/// vars and defaults for all three.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Steps running at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    #[command(flatten)]
    pub state: StateArgs,
    /// A dotenv file with secret values (`NAME=value`).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Stream every step's output while it runs (a drill also lists its steps).
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// How to get the incident: a payload file, or flags.
#[derive(Debug, Args)]
pub struct IncidentArgs {
    /// Incident payload (Alertmanager, Grafana, PagerDuty, CloudEvents or irctl JSON/YAML); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub incident: Option<PathBuf>,
    /// Force the payload format instead of detecting it.
    #[arg(long, value_name = "FORMAT", requires = "incident")]
    pub incident_format: Option<String>,
    /// An ad hoc incident label `key=value` (repeatable), when there is no payload.
    #[arg(long = "label", value_name = "KEY=VALUE", conflicts_with = "incident")]
    pub labels: Vec<String>,
    /// Title of an ad hoc incident.
    #[arg(long, conflicts_with = "incident")]
    pub title: Option<String>,
    /// Severity of an ad hoc incident (critical, high, warning, info).
    #[arg(long, conflicts_with = "incident")]
    pub severity: Option<String>,
}

/// Parses a flag like `10s` or `1m30s`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    irctl::duration::parse(text)
}
