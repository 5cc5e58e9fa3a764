//! Where playbooks come from: the `--playbooks`/`--repo` flags every command
//! that loads playbooks flattens in, kept apart because `main` also inspects
//! how `--repo` was given.

use std::path::PathBuf;

use clap::Args;

use super::parse_duration;

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
    /// The service catalog (Backstage files): a file, a directory, or `REPO[@REF]` [default: `catalog-info.yaml` at the top of the playbook folder].
    #[arg(long, env = "IRCTL_CATALOG", value_name = "PATH|REPO@REF")]
    pub catalog: Option<String>,
    /// Read `--repo` at this commit, recorded as reached through `--ref`
    /// (what `irctl serve` passes so a run keeps the commit it started with).
    #[arg(long, hide = true, value_name = "COMMIT", requires = "repo")]
    pub pin_commit: Option<String>,
}

/// The `--repo` value typed on the command line, in whichever subcommand
/// takes one; `None` when it is absent or came from `IRCTL_REPO`.
pub fn repo_on_command_line(matches: &clap::ArgMatches) -> Option<&str> {
    let mut m = matches;
    loop {
        if m.ids().any(|id| id.as_str() == "repo")
            && m.value_source("repo") == Some(clap::parser::ValueSource::CommandLine)
        {
            return m.get_one::<String>("repo").map(String::as_str);
        }
        m = m.subcommand()?.1;
    }
}
