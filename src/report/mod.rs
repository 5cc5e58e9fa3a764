//! Results written down for people and machines, in one place: human text
//! (rustc-style findings and a summary line), JSON, GitHub Actions workflow
//! commands and JUnit XML.
//!
//! `irctl validate`, `irctl test` and `irctl drill` decide what their results
//! mean (what makes a failure, which message a CI system shows first) and
//! hand them over in the shapes defined here; how each format is spelled and
//! escaped lives only here. JUnit XML is written by `quick-junit`, and
//! [`junit`] is the one place that knows it.

use serde::Serialize;

use crate::diagnostic::Diagnostic;

pub mod github;
pub mod human;
pub mod junit;

/// Pretty-printed JSON without a trailing newline.
pub fn json<T: Serialize + ?Sized>(value: &T) -> String {
    // Our report types are plain data (string keys, no fallible
    // serializers), so serializing them cannot fail; `null` would be the
    // honest answer if it ever did.
    serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_string())
}

/// Counts of findings, for the summary line and the exit code.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
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

    /// Whether the findings fail the check: any error, or any warning when
    /// warnings are denied.
    pub fn failed(&self, deny_warnings: bool) -> bool {
        self.errors > 0 || (deny_warnings && self.warnings > 0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;

    #[test]
    fn summary_counts_files_once_and_reads_well() {
        let diags = [
            Diagnostic::error("a.yaml", Pos::new(1, 1), "x", "one"),
            Diagnostic::warning("a.yaml", Pos::new(2, 1), "y", "two"),
            Diagnostic::error("b.yaml", Pos::new(1, 1), "x", "three"),
        ];
        let s = Summary::of(&diags, 12);
        assert_eq!(s.line(), "2 errors, 1 warning in 2 of 12 playbooks");
        assert!(s.failed(false));
        assert_eq!(Summary::of(&[], 1).line(), "1 playbook valid");
        let warned = Summary::of(&diags[1..2], 1);
        assert!(!warned.failed(false) && warned.failed(true));
    }

    #[test]
    fn json_is_pretty() {
        assert_eq!(json(&[1, 2]), "[\n  1,\n  2\n]");
    }
}
