//! The one output channel: everything irctl prints goes through [`Ui`].
//!
//! Results go to stdout, diagnostics and progress to stderr, so
//! `irctl list --format json | jq` always sees clean JSON.

use std::io::{self, IsTerminal, Write};

use comfy_table::{ContentArrangement, ContentLineStyle, LineStyle, Table, TableStyle};

/// A table style with one rule under the header and nothing else: easy to
/// read in a terminal, easy to grep and diff. The blank right border keeps
/// the exact layout of earlier releases (one trailing space on each line).
const HEADER_RULE_ONLY: TableStyle = TableStyle::new()
    .header_lines(ContentLineStyle::none().right(' '))
    .header_separator(LineStyle::none().fill('\u{2500}').right('\u{2500}'))
    .content_lines(ContentLineStyle::none().right(' '));

use crate::cli::ColorChoice;

/// Where and how to print.
pub struct Ui {
    color_out: bool,
    color_err: bool,
}

impl Ui {
    /// Decides on color once, from the flag, `NO_COLOR` and whether the streams are terminals.
    pub fn new(choice: ColorChoice) -> Self {
        let allowed = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => allowed && tty,
        };
        Ui {
            color_out: decide(io::stdout().is_terminal()),
            color_err: decide(io::stderr().is_terminal()),
        }
    }

    /// Whether stderr output may use ANSI color.
    pub fn color_err(&self) -> bool {
        self.color_err
    }

    /// Whether stdout output may use ANSI color.
    #[allow(dead_code)]
    pub fn color_out(&self) -> bool {
        self.color_out
    }

    /// Writes `text` to stdout as is.
    pub fn out(&self, text: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }

    /// Writes one line to stdout.
    pub fn outln(&self, text: &str) -> io::Result<()> {
        self.out(&format!("{text}\n"))
    }

    /// Writes `text` to stderr; a failure to write there is not worth failing for.
    pub fn err(&self, text: &str) {
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }

    /// Writes one line to stderr.
    pub fn errln(&self, text: &str) {
        self.err(&format!("{text}\n"));
    }

    /// A `warning:` line on stderr.
    pub fn warn(&self, text: &str) {
        let label = if self.color_err {
            "\x1b[1;33mwarning\x1b[0m"
        } else {
            "warning"
        };
        self.errln(&format!("{label}: {text}"));
    }

    /// Prints an error with its chain of causes.
    pub fn error(&self, err: &anyhow::Error) {
        let label = if self.color_err {
            "\x1b[1;31merror\x1b[0m"
        } else {
            "error"
        };
        let mut text = format!("{label}: {err}");
        for cause in err.chain().skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        self.errln(&text);
    }

    /// A table in irctl's house style.
    pub fn table(&self, header: &[&str]) -> Table {
        let mut table = Table::new();
        table
            .load_style(HEADER_RULE_ONLY)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.iter().copied());
        table
    }
}

/// Whether the error is stdout being closed under us (`irctl … | head`).
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    })
}
