//! Thin command handlers: each turns its parsed arguments into a request,
//! calls a library operation and prints the result through
//! [`crate::ui::Ui`], returning the exit code.
//!
//! [`dispatch`] builds the one per-invocation [`Context`] (ui, state
//! directory, actor, clock, secrets) and hands it to every handler. Handlers
//! share only [`context`] and the live output around the engine ([`live`]);
//! none imports another. `run` keeps two parts of itself beside it: its
//! `--dry-run` plan ([`dry_run`]) and what it records and says of a payload
//! it does not simply run ([`arrival`]).

mod approve;
mod arrival;
mod context;
mod describe;
mod drill;
mod dry_run;
mod graph;
mod handoff;
mod history;
mod impact;
mod list;
mod live;
mod matching;
mod note;
mod postmortem;
mod resume;
mod run;
mod runs;
mod serve;
mod test;
mod timeline;
mod validate;
mod who;

use crate::cli::Command;
use crate::ui::Ui;
use context::Context;

/// The work failed: a step, a validation, a drill.
pub const EXIT_FAILED: u8 = 1;
/// Bad flags, unreadable or malformed input.
pub const EXIT_USAGE: u8 = 2;
/// A file could not be written: the disk is full, a quota or file-size
/// limit was reached, or a record (a timeline) could not be written.
pub const EXIT_UNWRITTEN: u8 = irctl::fsutil::EXIT_CODE;
/// Interrupted by a signal.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs one command.
pub fn dispatch(command: Command, ui: Ui) -> anyhow::Result<u8> {
    let ctx = Context::new(ui, &command)?;
    match command {
        Command::Validate(args) => validate::run(args, &ctx),
        Command::List(args) => list::run(args, &ctx),
        Command::Match(args) => matching::run(args, &ctx),
        Command::Run(args) => run::run(args, &ctx),
        Command::Test(args) => test::run(args, &ctx),
        Command::Drill(args) => drill::run(args, &ctx),
        Command::Resume(args) => resume::run(args, &ctx),
        Command::Approve(args) => approve::run(args, &ctx),
        Command::Serve(args) => serve::run(args, &ctx),
        Command::History(args) => history::run(args, &ctx),
        Command::Schema => describe::schema(&ctx),
        Command::Completions { shell } => describe::completions(shell, &ctx),
        Command::Man => describe::man(&ctx),
        Command::Runs(args) => runs::runs(args, &ctx),
        Command::Timeline(args) => timeline::run(args, &ctx),
        Command::Note(args) => note::note(args, &ctx),
        Command::Resolve(args) => note::resolve(args, &ctx),
        Command::Ingest(args) => note::ingest(args, &ctx),
        Command::Postmortem(args) => postmortem::run(args, &ctx),
        Command::Graph(args) => graph::run(args, &ctx),
        Command::Stats(args) => runs::stats(args, &ctx),
        Command::Handoff(args) => handoff::run(args, &ctx),
        Command::Who(args) => who::run(args, &ctx),
    }
}

/// Errors that reach `main` are input or environment problems, except a run
/// that is locked by another one (or by a killed one's live processes),
/// which is the work not being done, and a write that found no room (or a
/// record that could not be written), which is not the input's fault and
/// goes away once space is freed.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err
        .chain()
        .any(|c| c.is::<irctl::lock::Busy>() || c.is::<irctl::lock::Leftover>())
    {
        EXIT_FAILED
    } else if err.chain().any(|c| {
        c.is::<irctl::engine::RecordLost>()
            || c.is::<irctl::timeline::Unwritable>()
            || irctl::fsutil::out_of_room(c)
    }) {
        EXIT_UNWRITTEN
    } else {
        EXIT_USAGE
    }
}
