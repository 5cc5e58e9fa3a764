//! Command-line declarations: one struct per subcommand, with the help text
//! users see. No behaviour lives here; `cmd/` does the work.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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

/// Color output choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color on terminals when `NO_COLOR` is unset.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
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
        after_help = "Examples:\n  irctl run --incident examples/incidents/disk-filling.json\n  irctl run disk-filling-up --label instance=db-1:9100 --input threshold_percent=80\n  irctl run --incident alert.json --dry-run\n\nExit status: 0 succeeded, 1 a step failed (or no/ambiguous match, or the run is locked), 2 bad input, 130 interrupted."
    )]
    Run(RunArgs),
    /// Show the commits that changed a playbook's file, newest first.
    #[command(
        after_help = "Examples:\n  irctl history disk-filling-up\n  irctl history pg-connections-saturated --repo https://git.example.com/ops/playbooks.git --limit 5\n  irctl history disk-filling-up --format json\n\nExit status: 0 ok, 2 unknown playbook or not in a Git repository."
    )]
    History(HistoryArgs),
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

/// Where playbooks are loaded from.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Directory of playbooks (`*.yaml`, `*.yml`, searched recursively).
    #[arg(
        long,
        env = "IRCTL_PLAYBOOKS",
        default_value = "playbooks",
        value_name = "DIR"
    )]
    pub playbooks: PathBuf,
    /// Load playbooks from this Git repository instead: an https://, ssh://, git:// or file:// URL, `git@host:org/repo`, or a local path.
    #[arg(
        long,
        env = "IRCTL_REPO",
        value_name = "URL|PATH",
        hide_env_values = true
    )]
    pub repo: Option<String>,
    /// Branch, tag or commit of `--repo` [default: the remote's default branch].
    #[arg(long = "ref", env = "IRCTL_REF", value_name = "REF")]
    pub git_ref: Option<String>,
    /// The playbook folder inside `--repo`.
    #[arg(long, default_value = "playbooks", value_name = "DIR")]
    pub repo_path: String,
    /// Where Git repositories are cached [default: $XDG_CACHE_HOME/irctl].
    #[arg(long, env = "IRCTL_CACHE_DIR", value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Use the cached `--repo` without fetching.
    #[arg(long)]
    pub offline: bool,
    /// Give up fetching `--repo` after this long and use the cache.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub fetch_timeout: std::time::Duration,
}

/// Parses a flag like `10s` or `1m30s`.
fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    irctl::duration::parse(text)
}

/// Output format of `validate`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    /// rustc-style messages with the source line (stderr).
    Human,
    /// A JSON array of findings (stdout).
    Json,
    /// GitHub Actions workflow commands (stdout).
    Github,
    /// JUnit XML, one testcase per playbook (stdout).
    Junit,
}

/// Arguments of `validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Files or directories to check; default the `--playbooks` directory.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
    pub format: ValidateFormat,
    /// Exit 1 on warnings too.
    #[arg(long)]
    pub deny_warnings: bool,
    /// Report findings only for playbook files that differ from this ref (the whole set is still checked).
    #[arg(long, value_name = "REF")]
    pub changed_since: Option<String>,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Table or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table for people.
    Table,
    /// JSON for programs.
    Json,
}

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
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

/// Arguments of `match`.
#[derive(Debug, Args)]
pub struct MatchArgs {
    #[command(flatten)]
    pub incident: IncidentArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}

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
    /// Steps running at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Where runs and their timelines are kept [default: $XDG_STATE_HOME/irctl].
    #[arg(long, env = "IRCTL_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A dotenv file with secret values (`NAME=value`).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    /// Stream every step's output while it runs.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// When several playbooks tie for the best match, run each of them.
    #[arg(long, conflicts_with = "playbook")]
    pub all_matching: bool,
    #[command(flatten)]
    pub source: SourceArgs,
}

/// Arguments of `history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The playbook's name (or its file path).
    #[arg(value_name = "PLAYBOOK")]
    pub playbook: String,
    /// Show at most this many commits.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
}
