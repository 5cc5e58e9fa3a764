//! Arguments of the commands that read playbooks without running them:
//! `validate`, `list`, `match`, `who` and `history`.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{IncidentArgs, OutputFormat, SourceArgs};

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

/// Arguments of `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub source: SourceArgs,
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

/// Arguments of `who`.
#[derive(Debug, Args)]
pub struct WhoArgs {
    #[command(flatten)]
    pub incident: IncidentArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
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
