//! Thin command handlers: turn parsed arguments into a call to a stage and
//! print the result through [`crate::ui::Ui`]. Each returns the exit code.

mod describe;
mod drill;
mod execution;
mod history;
mod list;
mod matching;
mod note;
mod postmortem;
mod record;
mod resume;
mod run;
mod runs;
mod source;
mod test;
mod timeline;
mod validate;

use crate::cli::{Command, SourceArgs};
use crate::ui::Ui;
use irctl::playbook::PlaybookSet;
use irctl::playbook::index::Index;

/// The work failed: a step, a validation, a drill.
pub const EXIT_FAILED: u8 = 1;
/// Bad flags, unreadable or malformed input.
pub const EXIT_USAGE: u8 = 2;

/// Runs one command.
pub fn dispatch(command: Command, ui: &Ui) -> anyhow::Result<u8> {
    if reads_clock(&command) {
        // Refused here, with one error, rather than silently ignored later.
        irctl::clock::Clock::from_env()?;
    }
    match command {
        Command::Validate(args) => validate::run(args, ui),
        Command::List(args) => list::run(args, ui),
        Command::Match(args) => matching::run(args, ui),
        Command::Run(args) => run::run(args, ui),
        Command::Test(args) => test::run(args, ui),
        Command::Drill(args) => drill::run(args, ui),
        Command::Resume(args) => resume::run(args, ui),
        Command::History(args) => history::run(args, ui),
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

/// Whether the command asks for the current time, so `IRCTL_NOW` must be
/// valid; `run` and the engine always use the system clock, and a stray
/// variable must never block a run. (`drill` also takes `--now`, and checks
/// its clock itself.)
fn reads_clock(command: &Command) -> bool {
    matches!(
        command,
        Command::Runs(_)
            | Command::Stats(_)
            | Command::Note(_)
            | Command::Resolve(_)
            | Command::Ingest(_)
            | Command::Postmortem(_)
    )
}

/// Interrupted by a signal.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Errors that reach `main` are input or environment problems, except a run
/// that is locked by another one, which is the work not being done.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.is::<irctl::lock::Busy>()) {
        EXIT_FAILED
    } else {
        EXIT_USAGE
    }
}

/// Loads playbooks for commands that use them (not `validate`): files with
/// errors are skipped with one warning, so a broken playbook elsewhere in the
/// repo never blocks the one a responder needs at 3 a.m.
pub fn load_playbooks(args: &SourceArgs, ui: &Ui) -> anyhow::Result<PlaybookSet> {
    let read = read_source(args, ui)?;
    let origin = describe_origin(args, &read);
    let set = read.load().set;
    warn_broken(ui, &set.broken_files());
    if set.playbooks.is_empty() {
        anyhow::bail!("no valid playbooks in {origin}");
    }
    Ok(set)
}

/// Playbooks summarised for the commands that match before they run
/// (`match`, `run`), and the source they came from.
pub struct Indexed {
    /// What matching needs of every valid playbook.
    pub index: Index,
    read: irctl::source::Read,
}

impl Indexed {
    /// The playbooks named `names`, checked in full, with their provenance.
    pub fn load(&mut self, names: &[&str]) -> PlaybookSet {
        let mut set = self.index.load(names);
        self.read.stamp(&mut set);
        set
    }
}

/// Summarises the playbooks for `match` and `run`: only the chosen ones are
/// then checked in full, with the same skip-broken-files rule as
/// [`load_playbooks`].
pub fn load_index(args: &SourceArgs, ui: &Ui) -> anyhow::Result<Indexed> {
    let mut read = read_source(args, ui)?;
    let origin = describe_origin(args, &read);
    // Without any cache directory the index still works, it just saves nothing.
    let cache = irctl::source::cache_dir(args.cache_dir.as_deref()).ok();
    let index = Index::build(std::mem::take(&mut read.sources), cache.as_deref());
    warn_broken(ui, &index.broken);
    if index.entries.is_empty() {
        anyhow::bail!("no valid playbooks in {origin}");
    }
    Ok(Indexed { index, read })
}

fn read_source(args: &SourceArgs, ui: &Ui) -> anyhow::Result<irctl::source::Read> {
    source::read(args, &[], ui).map_err(|e| match &args.repo {
        // The Git loader names the repository itself, without credentials.
        Some(_) => e,
        None => e.context(format!(
            "cannot load playbooks from `{}`",
            args.playbooks.display()
        )),
    })
}

fn describe_origin(args: &SourceArgs, read: &irctl::source::Read) -> String {
    read.describe()
        .unwrap_or_else(|| format!("`{}`", args.playbooks.display()))
}

fn warn_broken(ui: &Ui, broken: &[impl AsRef<str>]) {
    if !broken.is_empty() {
        ui.warn(&format!(
            "{} playbook file{} with errors skipped ({}); run `irctl validate` for details",
            broken.len(),
            if broken.len() == 1 { "" } else { "s" },
            broken
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<_>>()
                .join(", ")
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
