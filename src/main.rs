//! The `irctl` binary: parse arguments, run one command, map the outcome to
//! the documented exit code. Nothing else lives here.

// Output goes through `ui::Ui` only (`clippy.toml` keeps the raw streams there too).
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

mod cli;
mod cmd;
mod ui;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // clap prints help/version to stdout (exit 0) and usage errors to stderr.
            let _ = err.print();
            return ExitCode::from(if err.use_stderr() { cmd::EXIT_USAGE } else { 0 });
        }
    };
    let ui = ui::Ui::new(cli.color);
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
