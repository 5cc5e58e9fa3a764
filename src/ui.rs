//! The one output channel: everything irctl prints goes through [`Ui`].
//!
//! Results go to stdout, diagnostics and progress to stderr, so
//! `irctl list --format json | jq` always sees clean JSON. This is the one
//! module that touches the standard streams (clippy's `disallowed-methods`
//! keeps `std::io::stdout`/`stderr` out of the others, and `print_stdout`/
//! `print_stderr` are denied crate-wide).
//!
//! Text that reaches a terminal may come from outside — alert labels and
//! annotations, step output, notification text — so every writer here runs
//! it through [`visible`] first: a control character or a bidi override
//! shows as `\u{1b}` instead of moving the cursor, erasing a line or
//! reordering what follows. irctl's own colours are added after that, from
//! [`Styled`] parts, so they are the only escape sequences that get through.

use std::borrow::Cow;
use std::fmt;
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

    fn paint(&self) -> Paint {
        Paint {
            color: self.color_err,
        }
    }

    /// Writes `text` to stdout, with control characters made [`visible`].
    pub fn out(&self, text: &str) -> io::Result<()> {
        self.out_checked(&visible(text))
    }

    /// Writes one line to stdout, with control characters made [`visible`].
    pub fn outln(&self, text: &str) -> io::Result<()> {
        self.out(&format!("{text}\n"))
    }

    /// Writes one JSON document and a newline to stdout, through [`json_visible`].
    pub fn json(&self, text: &str) -> io::Result<()> {
        self.out_checked(&format!("{}\n", json_visible(text)))
    }

    /// The one writer to stdout: `text` is visible already.
    #[allow(clippy::disallowed_methods)] // the one writer to stdout
    fn out_checked(&self, text: &str) -> io::Result<()> {
        let mut stdout = io::stdout().lock();
        stdout.write_all(text.as_bytes())?;
        stdout.flush()
    }

    /// Writes `text` to stderr, with control characters made [`visible`];
    /// a failure to write there is not worth failing for.
    pub fn err(&self, text: &str) {
        self.err_checked(&visible(text));
    }

    /// The one writer to stderr: `text` is visible already, or irctl's own styling.
    #[allow(clippy::disallowed_methods)] // the one writer to stderr
    fn err_checked(&self, text: &str) {
        let mut stderr = io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }

    /// Writes one line to stderr, with control characters made [`visible`].
    pub fn errln(&self, text: &str) {
        self.err(&format!("{text}\n"));
    }

    /// Writes one line of parts to stderr: each made [`visible`], then coloured.
    pub fn say(&self, line: &Styled) {
        let paint = self.paint();
        let mut text = String::new();
        for (tone, part) in &line.parts {
            let part = visible(part);
            match tone {
                Some(tone) => text.push_str(&paint.paint(*tone, &part)),
                None => text.push_str(&part),
            }
        }
        text.push('\n');
        self.err_checked(&text);
    }

    /// A `warning:` line on stderr.
    pub fn warn(&self, text: &str) {
        self.say(
            &Styled::new()
                .tone(Tone::Warning, "warning")
                .text(": ")
                .text(text),
        );
    }

    /// A finding on stderr, the way rustc shows one, with the line of
    /// `source` it points at.
    pub fn diagnostic(&self, d: &Diagnostic, source: Option<&str>) {
        let paint = self.paint();
        let style = |part: Part, text: &str| {
            let tone = match part {
                Part::Error => Tone::Alarm,
                Part::Warning => Tone::Warning,
                Part::Frame => Tone::Frame,
                Part::Emphasis => Tone::Strong,
            };
            paint.paint(tone, text)
        };
        // Made visible before the colours go in: a file name, a message or
        // a source line may carry what a terminal would act on.
        let mut shown = d.clone();
        shown.file = visible(&d.file).into_owned();
        shown.message = visible(&d.message).into_owned();
        shown.help = d.help.as_deref().map(|h| visible(h).into_owned());
        let source = source.map(visible);
        let mut text = human::diagnostic(&shown, source.as_deref(), &style);
        text.push('\n');
        self.err_checked(&text);
    }

    /// Asks `prompt [y/N]` on the terminal; `None` when there is no terminal
    /// to ask on. The prompt is made [`visible`]: a question rendered from
    /// alert data must not be able to rewrite itself on the screen.
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
        let mut text = format!(": {err}");
        for cause in err.chain().skip(1) {
            text.push_str(&format!("\n  caused by: {cause}"));
        }
        self.say(&Styled::new().tone(Tone::Alarm, "error").text(text));
    }

    /// A table in irctl's house style.
    pub fn table(&self, header: &[&str]) -> Grid {
        let mut table = Table::new();
        table
            .load_style(HEADER_RULE_ONLY)
            .set_content_arrangement(ContentArrangement::Disabled)
            .set_header(header.iter().copied());
        Grid(table)
    }
}

/// A table whose cells are made [`visible`] as they go in, so its columns
/// line up with what the terminal shows.
pub struct Grid(Table);

impl Grid {
    /// Adds one row.
    pub fn add_row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let row: Vec<String> = cells
            .into_iter()
            .map(|c| visible(c.as_ref()).into_owned())
            .collect();
        self.0.add_row(row);
    }
}

impl fmt::Display for Grid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A line in parts, some in a colour (see [`Ui::say`]).
#[derive(Clone, Debug, Default)]
pub struct Styled {
    parts: Vec<(Option<Tone>, String)>,
}

impl Styled {
    /// No parts yet.
    pub fn new() -> Self {
        Styled::default()
    }

    /// Adds plain text.
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.parts.push((None, text.into()));
        self
    }

    /// Adds text in `tone`.
    pub fn tone(mut self, tone: Tone, text: impl Into<String>) -> Self {
        self.parts.push((Some(tone), text.into()));
        self
    }
}

/// Whether `c` would act on a terminal instead of showing: a control
/// character other than line feed and tab (C0, DEL, C1), or a bidi
/// embedding, override or isolate (U+202A–U+202E, U+2066–U+2069), which
/// reorders the text after it.
fn is_hidden(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A JSON document with nothing [hidden](is_hidden) left raw. JSON
/// escapes the C0 controls itself; DEL, the C1 controls and bidi overrides,
/// which it may leave raw (and which can only stand inside strings), become
/// `\uXXXX` escapes, which every JSON reader decodes to the same text.
pub fn json_visible(text: &str) -> Cow<'_, str> {
    let escape = |c: char| is_hidden(c) && c >= '\u{7f}';
    if !text.chars().any(escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// `text` with every [hidden](is_hidden) character written as its Rust
/// escape (`\u{1b}`, `\u{d}`, `\u{202e}`), so it shows instead of acting.
/// Line feeds and tabs stay: output may be multi-line.
pub fn visible(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_hidden(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
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

/// Colours text for stderr, or leaves it plain when stderr takes no colour.
#[derive(Clone, Copy, Debug)]
struct Paint {
    color: bool,
}

impl Paint {
    /// `text` in `tone`.
    fn paint(self, tone: Tone, text: &str) -> String {
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

    #[test]
    fn controls_and_bidi_overrides_show_as_escapes() {
        assert_eq!(visible("plain\n\ttext"), "plain\n\ttext");
        assert_eq!(
            visible("a\r\u{1b}[2Kb\u{7f}\u{9b}c\u{202e}d\u{2066}"),
            "a\\u{d}\\u{1b}[2Kb\\u{7f}\\u{9b}c\\u{202e}d\\u{2066}"
        );
        assert!(matches!(visible("ok ✔"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_keeps_its_meaning_with_nothing_hidden() {
        let doc = serde_json::to_string(&"x\u{1b}\u{85}\u{202e}\u{7f}y").unwrap();
        let shown = json_visible(&doc);
        assert_eq!(shown, "\"x\\u001b\\u0085\\u202e\\u007fy\"");
        let back: String = serde_json::from_str(&shown).unwrap();
        assert_eq!(back, "x\u{1b}\u{85}\u{202e}\u{7f}y");
    }
}
