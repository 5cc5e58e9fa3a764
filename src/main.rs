//! The `irctl` binary: parse arguments, run one command, map the outcome to
//! the documented exit code. Nothing else lives here.

// Output goes through `ui::Ui` only (`clippy.toml` keeps the raw streams there too).
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

mod cli;
mod cmd;
mod ui;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let parsed = cli::Cli::command().try_get_matches().and_then(|matches| {
        cli::Cli::from_arg_matches(&matches)
            .map(|cli| (cli, matches))
            .map_err(|err| err.format(&mut cli::Cli::command()))
    });
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { cmd::EXIT_USAGE } else { 0 });
        }
    };
    survive_file_size_limit();
    let ui = ui::Ui::new(cli.color);
    if let Some(repo) = cli::repo_on_command_line(&matches)
        && let Err(err) = irctl::source::auth::refuse_in_argv(repo)
    {
        ui.error(&err);
        return ExitCode::from(cmd::EXIT_USAGE);
    }
    match cmd::dispatch(cli.command, ui) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if ui::is_broken_pipe(&err) {
                // `irctl list | head` closing the pipe early is not a failure.
                return ExitCode::SUCCESS;
            }
            ui.error(&err);
            ExitCode::from(cmd::exit_code_for(&err))
        }
    }
}

/// A write past the file-size limit (`ulimit -f`) must fail with `EFBIG`,
/// which irctl reports (the record could not be written, the run stops),
/// instead of the default `SIGXFSZ` killing irctl with nothing said. A
/// handler that does nothing rather than `SIG_IGN`, so the processes steps
/// start get the default action back when they exec.
fn survive_file_size_limit() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn ignore(_: nix::libc::c_int) {}
    let action = SigAction::new(
        SigHandler::Handler(ignore),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe, and no
    // other code in irctl handles SIGXFSZ.
    let _ = unsafe { sigaction(Signal::SIGXFSZ, &action) };
}
