//! The one output channel: everything irctl prints goes through [`Ui`].
//!
//! Results go to stdout, diagnostics and progress to stderr, so
//! `irctl list --format json | jq` always sees clean JSON. This is the one
//! module that touches the standard streams (clippy's `disallowed-methods`
//! keeps `std::io::stdout`/`stderr` out of the others, and `print_stdout`/
//! `print_stderr` are denied crate-wide).

use std::io::{self, BufRead, IsTerminal, Write};

use comfy_table::{ContentArrangement, ContentLineStyle, LineStyle, Table, TableStyle};
use irctl::diagnostic::Diagnostic;
use irctl::report::human::{self, Part};

/// A table style with one rule under the header and nothing else: easy to
/// read in a terminal, easy to grep and diff. The blank right border keeps
/// the exact layout of earlier releases (one trailing space on each line).
const HEADER_RULE_ONLY: TableStyle = TableStyle::new()
    .header_lines(ContentLineStyle::none().right(' '))
    .header_separator(LineStyle::none().fill('\u{2500}').right('\u{2500}'))
    .content_lines(ContentLineStyle::none().right(' '));

/// Color output choice (`--color`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color on terminals when `NO_COLOR` is unset.
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// Where and how to print; small and `Copy`, so a progress observer can own one.
#[derive(Clone, Copy, Debug)]
pub struct Ui {
    color_err: bool,
}

impl Ui {
    /// Decides on color once, from the flag, `NO_COLOR` and whether the streams are terminals.
    #[allow(clippy::disallowed_methods)] // the one place that looks at the streams
    pub fn new(choice: ColorChoice) -> Self {
        let allowed = !irctl::env::no_color();
        let decide = |tty: bool| match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => allowed && tty,
        };
        // Nothing irctl writes to stdout is coloured: results are for pipes
        // and files as much as for people.
        Ui {
            color_err: decide(io::stderr().is_terminal()),
        }
    }

    /// Colours for progress on stderr.
    pub fn err_paint(&self) -> Paint {
        Paint {
            color: self.color_err,
        }
    }

    /// Writes `text` to stdout as is.
    #[allow(clippy::disallowed_methods)] // the one writer to stdout
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
    #[allow(clippy::disallowed_methods)] // the one writer to stderr
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
        let label = self.err_paint().paint(Tone::Warning, "warning");
        self.errln(&format!("{label}: {text}"));
    }

    /// A finding on stderr, the way rustc shows one, with the line of
    /// `source` it points at.
    pub fn diagnostic(&self, d: &Diagnostic, source: Option<&str>) {
        let paint = self.err_paint();
        let style = |part: Part, text: &str| {
            let tone = match part {
                Part::Error => Tone::Alarm,
                Part::Warning => Tone::Warning,
                Part::Frame => Tone::Frame,
                Part::Emphasis => Tone::Strong,
            };
            paint.paint(tone, text)
        };
        self.err(&human::diagnostic(d, source, &style));
        self.err("\n");
    }

    /// Asks `prompt [y/N]` on the terminal; `None` when there is no terminal to ask on.
    #[allow(clippy::disallowed_methods)] // a question is asked on stderr
    pub fn ask(&self, prompt: &str) -> Option<bool> {
        if !io::stdin().is_terminal() || !io::stderr().is_terminal() {
            return None;
        }
        self.err(&format!("{prompt} [y/N] "));
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer).ok()?;
        Some(matches!(
            answer.trim().to_ascii_lowercase().as_str(),
            "y" | "yes"
        ))
    }

    /// Prints an error with its chain of causes.
    pub fn error(&self, err: &anyhow::Error) {
        let label = self.err_paint().paint(Tone::Alarm, "error");
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

/// What a piece of progress text says at a glance, for its colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    /// Something to look at (bold yellow).
    Warning,
    /// Work starting (cyan).
    Running,
    /// Trying again (yellow).
    Retrying,
    /// Done well (green).
    Succeeded,
    /// Done badly (red).
    Failed,
    /// Not done, or background (grey).
    Muted,
    /// Pretended, in a drill (magenta).
    Simulated,
    /// A message to people (bold magenta).
    Notified,
    /// The run stopping, an error (bold red).
    Alarm,
    /// The frame around quoted source (bold blue).
    Frame,
    /// Words that matter most in a line (bold).
    Strong,
}

/// Colours text for stderr, or leaves it plain when stderr takes no colour:
/// a small copyable value that a progress observer can keep.
#[derive(Clone, Copy, Debug)]
pub struct Paint {
    color: bool,
}

impl Paint {
    /// `text` in `tone`.
    pub fn paint(self, tone: Tone, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        let code = match tone {
            Tone::Warning => "1;33",
            Tone::Running => "36",
            Tone::Retrying => "33",
            Tone::Succeeded => "32",
            Tone::Failed => "31",
            Tone::Muted => "90",
            Tone::Simulated => "35",
            Tone::Notified => "1;35",
            Tone::Alarm => "1;31",
            Tone::Frame => "1;34",
            Tone::Strong => "1",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paint_leaves_text_alone_and_colour_wraps_it() {
        assert_eq!(Paint { color: false }.paint(Tone::Alarm, "error"), "error");
        assert_eq!(
            Paint { color: true }.paint(Tone::Alarm, "error"),
            "\x1b[1;31merror\x1b[0m"
        );
    }
}
