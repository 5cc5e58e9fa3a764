//! Thin command handlers: turn parsed arguments into a call to a stage and
//! print the result through [`crate::ui::Ui`]. Each returns the exit code.

mod describe;
mod history;
mod list;
mod matching;
mod run;
mod source;
mod validate;

use crate::cli::{Command, SourceArgs};
use crate::ui::Ui;
use irctl::playbook::PlaybookSet;

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
        Command::History(args) => history::run(args, ui),
        Command::Schema => describe::schema(ui),
        Command::Completions { shell } => describe::completions(shell, ui),
        Command::Man => describe::man(ui),
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
    let loaded = source::load(source, &[], ui).map_err(|e| match &source.repo {
        // The Git loader names the repository itself, without credentials.
        Some(_) => e,
        None => e.context(format!(
            "cannot load playbooks from `{}`",
            source.playbooks.display()
        )),
    })?;
    let origin = loaded.describe();
    let set = loaded.set;
    let mut broken: Vec<&str> = set
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| d.file.as_str())
        .collect();
    broken.dedup();
    if !broken.is_empty() {
        ui.warn(&format!(
            "{} playbook file{} with errors skipped ({}); run `irctl validate` for details",
            broken.len(),
            if broken.len() == 1 { "" } else { "s" },
            broken.join(", ")
        ));
    }
    if set.playbooks.is_empty() {
        match origin {
            Some(origin) => anyhow::bail!("no valid playbooks in {origin}"),
            None => anyhow::bail!("no valid playbooks in `{}`", source.playbooks.display()),
        }
    }
    Ok(set)
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
