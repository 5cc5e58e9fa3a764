//! Machine-readable drill reports: JUnit XML (one testcase per drill, CI
//! systems show failures inline) and JSON.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::Outcome;
use crate::diagnostic::xml_escape;

/// A report format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// JUnit XML.
    Junit,
    /// JSON.
    Json,
}

impl Format {
    /// The format a file name implies: `.xml` is JUnit, `.json` is JSON.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("xml") => Some(Format::Junit),
            Some("json") => Some(Format::Json),
            _ => None,
        }
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    passed: usize,
    failed: usize,
    drills: &'a [Outcome],
}

/// Renders `outcomes` in `format`.
pub fn render(outcomes: &[Outcome], format: Format) -> String {
    match format {
        Format::Json => {
            let failed = outcomes.iter().filter(|o| !o.passed).count();
            let report = JsonReport {
                passed: outcomes.len() - failed,
                failed,
                drills: outcomes,
            };
            let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Junit => junit(outcomes),
    }
}

fn secs(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn junit(outcomes: &[Outcome]) -> String {
    let failures = outcomes.iter().filter(|o| !o.passed).count();
    let total: std::time::Duration = outcomes.iter().map(|o| o.duration).sum();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"irctl drill\" tests=\"{}\" failures=\"{failures}\" time=\"{}\">",
        outcomes.len(),
        secs(total)
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"irctl drill\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" time=\"{}\">",
        outcomes.len(),
        secs(total)
    );
    for o in outcomes {
        let _ = writeln!(
            out,
            "    <testcase classname=\"irctl.drill\" name=\"{}\" time=\"{}\">",
            xml_escape(&o.playbook),
            secs(o.duration)
        );
        if !o.passed {
            let reason = o.reason.clone().unwrap_or_else(|| "drill failed".into());
            let mut detail = reason.clone();
            if let Some(step) = &o.failed_step {
                let _ = write!(detail, "\nfailed step: {step}");
            }
            if let Some(max) = o.max_duration {
                let _ = write!(
                    detail,
                    "\nduration: {} (max {})",
                    crate::duration::format(o.duration),
                    crate::duration::format(max)
                );
            }
            let _ = writeln!(
                out,
                "      <failure type=\"drill-failed\" message=\"{}\">{}</failure>",
                xml_escape(&reason),
                xml_escape(&detail)
            );
        }
        let mut sysout = String::new();
        if let Some(run) = &o.run_id {
            let _ = write!(sysout, "run {run}");
        }
        if let Some(t) = &o.timeline {
            let _ = write!(sysout, "\ntimeline: {}", t.display());
        }
        if !sysout.is_empty() {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                xml_escape(sysout.trim_start())
            );
        }
        out.push_str("    </testcase>\n");
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}
