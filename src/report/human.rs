//! Findings for people, the way rustc prints them: the message, the file,
//! line and column, the source line with a caret under the offending text,
//! and a `help:` line when there is one.

use std::fmt::Write as _;

use crate::diagnostic::{Diagnostic, Severity};

/// What a piece of a rendered finding is, so the caller can style it: the
/// library never builds escape codes, the binary's `Ui` decides on colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The `error[code]` label and its caret.
    Error,
    /// The `warning[code]` label and its caret.
    Warning,
    /// The frame around the source line (`-->`, `|`, `=`, the line number).
    Frame,
    /// The message and the `help` label.
    Emphasis,
}

/// Leaves every part as it is: findings for files, pipes and tests.
pub fn plain(_: Part, text: &str) -> String {
    text.to_string()
}

/// Renders one diagnostic with the line of `source` it points at; `style`
/// dresses each [`Part`] (see [`plain`]).
pub fn diagnostic(
    d: &Diagnostic,
    source: Option<&str>,
    style: &dyn Fn(Part, &str) -> String,
) -> String {
    let (label, tint) = match d.severity {
        Severity::Error => ("error", Part::Error),
        Severity::Warning => ("warning", Part::Warning),
    };
    let frame = |text: &str| style(Part::Frame, text);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}{}",
        style(tint, &format!("{label}[{}]", d.code)),
        style(Part::Emphasis, &format!(": {}", d.message))
    );
    let gutter = d.line.to_string().len().max(1);
    let pad = " ".repeat(gutter);
    if d.line > 0 {
        let _ = writeln!(
            out,
            "{pad}{} {}:{}:{}",
            frame("-->"),
            d.file,
            d.line,
            d.column.max(1)
        );
        if let Some(text) = source.and_then(|s| s.lines().nth(d.line as usize - 1)) {
            let text = text.trim_end();
            let _ = writeln!(out, "{pad} {}", frame("|"));
            let _ = writeln!(out, "{} {} {text}", frame(&d.line.to_string()), frame("|"));
            if d.column > 0 {
                // Tabs stay tabs so the caret lines up however wide they show.
                let lead: String = text
                    .chars()
                    .take(d.column as usize - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(
                    out,
                    "{pad} {} {lead}{}",
                    frame("|"),
                    style(tint, &"^".repeat(d.width.max(1)))
                );
            }
        }
    } else {
        let _ = writeln!(out, "{pad}{} {}", frame("-->"), d.file);
    }
    if let Some(help) = &d.help {
        let _ = writeln!(
            out,
            "{pad} {} {}: {help}",
            frame("="),
            style(Part::Emphasis, "help")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;

    #[test]
    fn points_a_caret_at_the_column_and_keeps_tabs() {
        let d = Diagnostic::error("p.yaml", Pos::new(2, 4), "unknown-need", "no `b`")
            .with_width(3)
            .with_help("did you mean `a`?");
        let out = diagnostic(&d, Some("x: 1\n\tn: bbb\n"), &plain);
        assert_eq!(
            out,
            "error[unknown-need]: no `b`\n \
             --> p.yaml:2:4\n  \
             |\n\
             2 | \tn: bbb\n  \
             | \t  ^^^\n  \
             = help: did you mean `a`?\n"
        );
    }

    #[test]
    fn a_file_level_finding_names_only_the_file() {
        let d = Diagnostic::warning("p.yaml", Pos::UNKNOWN, "no-drill", "no drill");
        assert_eq!(
            diagnostic(&d, None, &plain),
            "warning[no-drill]: no drill\n --> p.yaml\n"
        );
    }

    #[test]
    fn a_style_dresses_each_part_and_nothing_else() {
        let d = Diagnostic::error("p.yaml", Pos::new(1, 1), "c", "m").with_help("h");
        let tag = |p: Part, t: &str| format!("<{p:?}>{t}</>");
        assert_eq!(
            diagnostic(&d, Some("x\n"), &tag),
            "<Error>error[c]</><Emphasis>: m</>\n \
             <Frame>--></> p.yaml:1:1\n  \
             <Frame>|</>\n\
             <Frame>1</> <Frame>|</> x\n  \
             <Frame>|</> <Error>^</>\n  \
             <Frame>=</> <Emphasis>help</>: h\n"
        );
    }
}
