//! Thin command handlers: turn parsed arguments into a call to a stage and
//! print the result through [`crate::ui::Ui`]. Each returns the exit code.

mod describe;
mod drill;
mod execution;
mod list;
mod matching;
mod note;
mod postmortem;
mod record;
mod resume;
mod run;
mod runs;
mod test;
mod timeline;
mod validate;

use anyhow::Context as _;

use crate::cli::{Command, SourceArgs};
use crate::ui::Ui;
use irctl::playbook::index::Index;
use irctl::playbook::{PlaybookSet, load};

/// The work failed: a step, a validation, a drill.
pub const EXIT_FAILED: u8 = 1;
/// Bad flags, unreadable or malformed input.
pub const EXIT_USAGE: u8 = 2;

/// Runs one command.
pub fn dispatch(command: Command, ui: &Ui) -> anyhow::Result<u8> {
    match command {
        Command::Validate(args) => validate::run(args, ui),
        Command::List(args) => list::run(args, ui),
        Command::Match(args) => matching::run(args, ui),
        Command::Run(args) => run::run(args, ui),
        Command::Test(args) => test::run(args, ui),
        Command::Drill(args) => drill::run(args, ui),
        Command::Resume(args) => resume::run(args, ui),
        Command::Schema => describe::schema(ui),
        Command::Completions { shell } => describe::completions(shell, ui),
        Command::Man => describe::man(ui),
        Command::Runs(args) => runs::runs(args, ui),
        Command::Timeline(args) => timeline::run(args, ui),
        Command::Note(args) => note::note(args, ui),
        Command::Resolve(args) => note::resolve(args, ui),
        Command::Ingest(args) => note::ingest(args, ui),
        Command::Postmortem(args) => postmortem::run(args, ui),
        Command::Stats(args) => runs::stats(args, ui),
    }
}

/// Interrupted by a signal.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Errors that reach `main` are input or environment problems, except a run
/// that is locked by another one, which is the work not being done.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<irctl::engine::lock::Busy>()) {
        EXIT_FAILED
    } else {
        EXIT_USAGE
    }
}

/// Loads playbooks for commands that use them (not `validate`): files with
/// errors are skipped with one warning, so a broken playbook elsewhere in the
/// repo never blocks the one a responder needs at 3 a.m.
pub fn load_playbooks(source: &SourceArgs, ui: &Ui) -> anyhow::Result<PlaybookSet> {
    let set = load::load_paths(std::slice::from_ref(&source.playbooks)).with_context(|| {
        format!(
            "cannot load playbooks from `{}`",
            source.playbooks.display()
        )
    })?;
    let mut broken: Vec<String> = set
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.clone())
        .collect();
    broken.dedup();
    warn_broken(ui, &broken);
    if set.playbooks.is_empty() {
        anyhow::bail!("no valid playbooks in `{}`", source.playbooks.display());
    }
    Ok(set)
}

/// Summarises the playbooks for commands that match before they run
/// (`match`, `run`): only the chosen ones are then checked in full, with the
/// same skip-broken-files rule as [`load_playbooks`].
pub fn load_index(source: &SourceArgs, ui: &Ui) -> anyhow::Result<Index> {
    let sources =
        load::read_sources(std::slice::from_ref(&source.playbooks)).with_context(|| {
            format!(
                "cannot load playbooks from `{}`",
                source.playbooks.display()
            )
        })?;
    let index = Index::build(sources, cache_dir().as_deref());
    warn_broken(ui, &index.broken);
    if index.entries.is_empty() {
        anyhow::bail!("no valid playbooks in `{}`", source.playbooks.display());
    }
    Ok(index)
}

/// Where irctl keeps what it can recompute: `$IRCTL_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/irctl`.
pub fn cache_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("IRCTL_CACHE_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| dirs::cache_dir().map(|d| d.join("irctl")))
}

fn warn_broken(ui: &Ui, broken: &[String]) {
    if !broken.is_empty() {
        ui.warn(&format!(
            "{} playbook file{} with errors skipped ({}); run `irctl validate` for details",
            broken.len(),
            if broken.len() == 1 { "" } else { "s" },
            broken.join(", ")
        ));
    }
}

/// Builds the incident from `--incident` or the ad hoc flags.
pub fn read_incident(args: &crate::cli::IncidentArgs) -> anyhow::Result<irctl::incident::Incident> {
    use irctl::incident;
    if let Some(path) = &args.incident {
        let format = match &args.incident_format {
            Some(name) => Some(
                name.parse::<incident::IncidentFormat>()
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            None => None,
        };
        return Ok(incident::read(path, format)?);
    }
    if args.labels.is_empty() && args.title.is_none() {
        anyhow::bail!(
            "no incident given: pass `--incident FILE` (or `-` for stdin), or describe one with `--label key=value`"
        );
    }
    let labels = args
        .labels
        .iter()
        .map(|l| {
            incident::parse_label_flag(l).map_err(|e| anyhow::anyhow!("invalid `--label {l}`: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(incident::from_flags(
        &labels,
        args.title.as_deref(),
        args.severity.as_deref(),
    ))
}
