//! Findings for people, the way rustc prints them: the message, the file,
//! line and column, the source line with a caret under the offending text,
//! and a `help:` line when there is one.

use std::fmt::Write as _;

use crate::diagnostic::{Diagnostic, Severity};

/// Renders one diagnostic with the line of `source` it points at; `color`
/// adds ANSI colors.
pub fn diagnostic(d: &Diagnostic, source: Option<&str>, color: bool) -> String {
    let (red, yellow, blue, bold, reset) = if color {
        (
            "\x1b[1;31m",
            "\x1b[1;33m",
            "\x1b[1;34m",
            "\x1b[1m",
            "\x1b[0m",
        )
    } else {
        ("", "", "", "", "")
    };
    let (label, tint) = match d.severity {
        Severity::Error => ("error", red),
        Severity::Warning => ("warning", yellow),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{tint}{label}[{}]{reset}{bold}: {}{reset}",
        d.code, d.message
    );
    let gutter = d.line.to_string().len().max(1);
    let pad = " ".repeat(gutter);
    if d.line > 0 {
        let _ = writeln!(
            out,
            "{pad}{blue}-->{reset} {}:{}:{}",
            d.file,
            d.line,
            d.column.max(1)
        );
        if let Some(text) = source.and_then(|s| s.lines().nth(d.line as usize - 1)) {
            let text = text.trim_end();
            let _ = writeln!(out, "{pad} {blue}|{reset}");
            let _ = writeln!(out, "{blue}{}{reset} {blue}|{reset} {text}", d.line);
            if d.column > 0 {
                // Tabs stay tabs so the caret lines up however wide they show.
                let lead: String = text
                    .chars()
                    .take(d.column as usize - 1)
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                let _ = writeln!(
                    out,
                    "{pad} {blue}|{reset} {lead}{tint}{}{reset}",
                    "^".repeat(d.width.max(1))
                );
            }
        }
    } else {
        let _ = writeln!(out, "{pad}{blue}-->{reset} {}", d.file);
    }
    if let Some(help) = &d.help {
        let _ = writeln!(out, "{pad} {blue}={reset} {bold}help{reset}: {help}");
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
        let out = diagnostic(&d, Some("x: 1\n\tn: bbb\n"), false);
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
            diagnostic(&d, None, false),
            "warning[no-drill]: no drill\n --> p.yaml\n"
        );
    }
}
