//! GitHub Actions workflow commands (`::error file=…,line=…::message`), which
//! GitHub shows as annotations on the pull request's diff.
//!
//! A command is one line, so the message and every property are escaped as
//! GitHub's runner unescapes them: `%`, CR and LF in the message; also `:`
//! and `,` in properties, which would otherwise end the property list or
//! start the next property. A hostile file name or message therefore cannot
//! forge a second command or a different file.

use std::fmt::Write as _;

use crate::diagnostic::{Diagnostic, Severity};

/// Escapes a command's message.
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a property value.
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command a line, for every diagnostic; `help` goes on a
/// second line of the message.
pub fn diagnostics(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let kind = match d.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut props = vec![format!("file={}", escape_property(&d.file))];
        if d.line > 0 {
            props.push(format!("line={}", d.line));
            if d.column > 0 {
                props.push(format!("col={}", d.column));
            }
        }
        props.push(format!(
            "title={}",
            escape_property(&format!("irctl {}", d.code))
        ));
        let mut msg = d.message.clone();
        if let Some(help) = &d.help {
            msg.push_str("\nhelp: ");
            msg.push_str(help);
        }
        let _ = writeln!(out, "::{kind} {}::{}", props.join(","), escape_data(&msg));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;

    #[test]
    fn message_escapes_percent_first_then_line_breaks() {
        assert_eq!(escape_data("100%\r\n%0A"), "100%25%0D%0A%250A");
        // `:` and `,` are harmless in the message.
        assert_eq!(escape_data("a: b, c"), "a: b, c");
    }

    #[test]
    fn property_escapes_separators_too() {
        assert_eq!(escape_property("a,b:c%d\ne\rf"), "a%2Cb%3Ac%25d%0Ae%0Df");
    }

    #[test]
    fn hostile_text_cannot_forge_a_command_or_a_property() {
        let file = "x.yaml,line=1::error file=evil.yaml::pwned\n::warning ::";
        let d = Diagnostic::error(
            file,
            Pos::new(3, 5),
            "schema",
            "bad\n::error file=forged.yaml::injected 100%",
        )
        .with_help("fix: it, now\r\nplease");
        let out = diagnostics(&[d]);
        assert_eq!(
            out,
            "::error file=x.yaml%2Cline=1%3A%3Aerror file=evil.yaml%3A%3Apwned%0A%3A%3Awarning %3A%3A,\
             line=3,col=5,title=irctl schema::\
             bad%0A::error file=forged.yaml::injected 100%25%0Ahelp: fix: it, now%0D%0Aplease\n"
        );
        assert_eq!(out.lines().count(), 1, "one command, one line");
    }

    #[test]
    fn positions_are_left_out_when_unknown() {
        let whole = Diagnostic::warning("p.yaml", Pos::UNKNOWN, "no-drill", "no drill");
        let line_only = Diagnostic::error("p.yaml", Pos::new(4, 0), "schema", "bad");
        assert_eq!(
            diagnostics(&[whole, line_only]),
            "::warning file=p.yaml,title=irctl no-drill::no drill\n\
             ::error file=p.yaml,line=4,title=irctl schema::bad\n"
        );
    }
}
