//! Findings about playbooks and their tests: what is wrong, how bad it is,
//! the file, line and column it points at, and how to fix it.
//!
//! This is only the model; [`crate::report`] renders findings for people
//! (rustc style), machines (JSON), GitHub Actions and JUnit.

use serde::Serialize;

use crate::yaml::{Pos, YamlError, YamlErrorKind};

/// Error or warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
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
    pub severity: Severity,
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
            severity: Severity::Error,
            code,
            message: message.into(),
            help: None,
            width: 1,
        }
    }

    /// A warning at `pos` in `file`.
    pub fn warning(file: &str, pos: Pos, code: &'static str, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
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
        self.severity == Severity::Error
    }

    /// The finding for a file that is not valid YAML or not the expected
    /// shape; `schema_code` names the shape (`schema` for playbooks,
    /// `test-schema` for test files). An unknown field gets "did you mean"
    /// or the list of fields.
    pub fn from_yaml(file: &str, e: YamlError, schema_code: &'static str) -> Self {
        let (code, help, width) = match &e.kind {
            YamlErrorKind::Syntax => ("yaml-syntax", None, 1),
            YamlErrorKind::DuplicateKey => (
                "duplicate-key",
                Some("remove one of the two keys".to_string()),
                1,
            ),
            YamlErrorKind::Schema => (schema_code, None, 1),
            YamlErrorKind::UnknownField { field, expected } => (
                schema_code,
                did_you_mean(field, expected.iter().map(String::as_str))
                    .or_else(|| Some(format!("expected one of {}", backticked(expected, ", ")))),
                field.len(),
            ),
        };
        Diagnostic::error(file, e.pos, code, e.message)
            .with_optional_help(help)
            .with_width(width)
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
