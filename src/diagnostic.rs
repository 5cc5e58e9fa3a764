//! Findings about playbooks, with the file, line and column they point at,
//! and their renderings for people (rustc style), machines (JSON), GitHub
//! Actions (workflow commands) and CI test reports (JUnit XML).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::yaml::Pos;

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Fails validation.
    Error,
    /// Reported; fails only with `--deny-warnings`.
    Warning,
}

/// One finding.
#[derive(Clone, Debug, Serialize)]
pub struct Diagnostic {
    /// The file as the user named it (relative paths stay relative).
    pub file: String,
    /// 1-based line; 0 when the problem is about the whole file.
    pub line: u32,
    /// 1-based column; 0 when unknown.
    pub column: u32,
    /// Error or warning.
    pub severity: Level,
    /// Stable code, e.g. `unknown-need`.
    pub code: &'static str,
    /// What is wrong, one line.
    pub message: String,
    /// How to fix it, when we know.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Width of the offending text, for the caret underline.
    #[serde(skip)]
    pub width: usize,
}

impl Diagnostic {
    /// An error at `pos` in `file`.
    pub fn error(file: &str, pos: Pos, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            line: pos.line,
            column: pos.column,
            severity: Level::Error,
            code,
            message: message.into(),
            help: None,
            width: 1,
        }
    }

    /// A warning at `pos` in `file`.
    pub fn warning(file: &str, pos: Pos, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Level::Warning,
            ..Diagnostic::error(file, pos, code, message)
        }
    }

    /// Adds a `help:` line.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds help only when there is some.
    pub fn with_optional_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// Sets the caret width.
    pub fn with_width(mut self, width: usize) -> Self {
        self.width = width.max(1);
        self
    }

    /// Whether this is an error (not a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Level::Error
    }
}

/// Suggests the closest candidate to `name` when one is close enough to be a typo.
pub fn did_you_mean<'a, I>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut best: Option<(usize, &str)> = None;
    for cand in candidates {
        let d = strsim::levenshtein(name, cand);
        let limit = (name.len().max(cand.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, cand));
        }
    }
    best.map(|(_, c)| format!("did you mean `{c}`?"))
}

/// Names as messages show them: `` `a`, `b` `` with `sep` between.
pub fn backticked<T: std::fmt::Display>(names: impl IntoIterator<Item = T>, sep: &str) -> String {
    names
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(sep)
}

/// Counts for the summary line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Summary {
    /// Number of errors.
    pub errors: usize,
    /// Number of warnings.
    pub warnings: usize,
    /// Files with at least one finding.
    pub files_with_findings: usize,
    /// Files checked.
    pub files: usize,
}

impl Summary {
    /// Tallies `diags` over `files` checked files.
    pub fn of(diags: &[Diagnostic], files: usize) -> Self {
        let errors = diags.iter().filter(|d| d.is_error()).count();
        let mut with: Vec<&str> = diags.iter().map(|d| d.file.as_str()).collect();
        with.sort_unstable();
        with.dedup();
        Summary {
            errors,
            warnings: diags.len() - errors,
            files_with_findings: with.len(),
            files,
        }
    }

    /// `3 errors, 1 warning in 2 of 12 playbooks` or `12 playbooks valid`.
    pub fn line(&self) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        if self.errors == 0 && self.warnings == 0 {
            return format!("{} valid", plural(self.files, "playbook"));
        }
        format!(
            "{}, {} in {} of {}",
            plural(self.errors, "error"),
            plural(self.warnings, "warning"),
            self.files_with_findings,
            plural(self.files, "playbook")
        )
    }
}

/// Renders one diagnostic the way rustc does, with the source line and a caret.
pub fn render_human(d: &Diagnostic, source: Option<&str>, color: bool) -> String {
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
        Level::Error => ("error", red),
        Level::Warning => ("warning", yellow),
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

/// The JSON array of findings.
pub fn render_json(diags: &[Diagnostic]) -> String {
    serde_json::to_string_pretty(diags).unwrap_or_else(|_| "[]".to_string())
}

fn gh_escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_escape_property(s: &str) -> String {
    gh_escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub Actions workflow commands, one a line.
pub fn render_github(diags: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diags {
        let kind = match d.severity {
            Level::Error => "error",
            Level::Warning => "warning",
        };
        let mut props = vec![format!("file={}", gh_escape_property(&d.file))];
        if d.line > 0 {
            props.push(format!("line={}", d.line));
            if d.column > 0 {
                props.push(format!("col={}", d.column));
            }
        }
        props.push(format!(
            "title={}",
            gh_escape_property(&format!("irctl {}", d.code))
        ));
        let mut msg = d.message.clone();
        if let Some(help) = &d.help {
            msg.push_str("\nhelp: ");
            msg.push_str(help);
        }
        let _ = writeln!(
            out,
            "::{kind} {}::{}",
            props.join(","),
            gh_escape_data(&msg)
        );
    }
    out
}

/// Escapes text for XML attributes and content.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one testcase per playbook file; errors are failures, warnings go to system-out.
pub fn render_junit(diags: &[Diagnostic], files: &[String], deny_warnings: bool) -> String {
    let mut by_file: BTreeMap<&str, Vec<&Diagnostic>> =
        files.iter().map(|f| (f.as_str(), Vec::new())).collect();
    for d in diags {
        by_file.entry(d.file.as_str()).or_default().push(d);
    }
    let failed = |ds: &[&Diagnostic]| ds.iter().any(|d| d.is_error() || deny_warnings);
    let failures = by_file.values().filter(|ds| failed(ds)).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"irctl validate\" tests=\"{}\" failures=\"{failures}\">",
        by_file.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"irctl validate\" tests=\"{}\" failures=\"{failures}\" errors=\"0\">",
        by_file.len()
    );
    for (file, ds) in &by_file {
        let _ = write!(
            out,
            "    <testcase classname=\"irctl.validate\" name=\"{}\"",
            xml_escape(file)
        );
        if ds.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        let text: String = ds
            .iter()
            .map(|d| {
                let sev = if d.is_error() { "error" } else { "warning" };
                format!(
                    "{}:{}:{}: {sev}[{}]: {}\n",
                    d.file, d.line, d.column, d.code, d.message
                )
            })
            .collect();
        if failed(ds) {
            let first = ds.iter().find(|d| d.is_error()).unwrap_or(&ds[0]);
            let _ = writeln!(
                out,
                "      <failure type=\"{}\" message=\"{}\">{}</failure>",
                first.code,
                xml_escape(&first.message),
                xml_escape(&text)
            );
        } else {
            let _ = writeln!(out, "      <system-out>{}</system-out>", xml_escape(&text));
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
