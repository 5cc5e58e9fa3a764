//! Machine-readable drill reports: JUnit XML (one testcase per drill, CI
//! systems show failures inline) and JSON. What a drill's failure says is
//! decided here; [`crate::report`] writes the formats.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use super::Outcome;
use crate::report::{self, junit};

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

    /// The format to write `path` in: `explicit` (`--report-format`), else
    /// what the file name implies; `None` without a report.
    pub fn choose(explicit: Option<Format>, path: Option<&Path>) -> anyhow::Result<Option<Format>> {
        match (explicit, path) {
            (Some(format), _) => Ok(Some(format)),
            (None, Some(path)) => Format::from_path(path).map(Some).ok_or_else(|| {
                anyhow::anyhow!(
                    "cannot tell the report format of `{}`: name it `*.xml` (JUnit) or `*.json`, or pass `--report-format`",
                    path.display()
                )
            }),
            (None, None) => Ok(None),
        }
    }
}

/// Fails when `path` cannot be written because its directory does not
/// exist: better found before an hour of drills than after.
pub fn check_destination(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
        && !dir.is_dir()
    {
        anyhow::bail!(
            "cannot write report `{}`: `{}` is not a directory",
            path.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Writes the report of `outcomes` to `path` in `format`.
pub fn write(path: &Path, format: Format, outcomes: &[Outcome]) -> anyhow::Result<()> {
    let text = render(outcomes, format)?;
    crate::fsutil::write_replacing(path, text.as_bytes())
}

#[derive(Serialize)]
struct JsonReport<'a> {
    passed: usize,
    failed: usize,
    drills: &'a [Outcome],
}

/// Renders `outcomes` in `format`, ending in a newline.
pub fn render(outcomes: &[Outcome], format: Format) -> anyhow::Result<String> {
    match format {
        Format::Json => {
            let failed = outcomes.iter().filter(|o| !o.passed).count();
            let mut text = report::json(&JsonReport {
                passed: outcomes.len() - failed,
                failed,
                drills: outcomes,
            });
            text.push('\n');
            Ok(text)
        }
        Format::Junit => {
            let total: Duration = outcomes.iter().map(|o| o.duration).sum();
            junit::Report {
                name: "irctl drill".into(),
                time: Some(total),
                suites: vec![junit::Suite {
                    name: "irctl drill".into(),
                    time: Some(total),
                    cases: outcomes.iter().map(case).collect(),
                }],
            }
            .to_xml()
        }
    }
}

/// One drill as a test case: a failed drill says why, which step failed and
/// how long it took against its limit; the run and its timeline go to
/// `<system-out>` so a CI page links a failure to its record.
fn case(o: &Outcome) -> junit::Case {
    let verdict = if o.passed {
        junit::Verdict::Passed
    } else {
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
        junit::Verdict::Failed(junit::Problem {
            kind: "drill-failed".into(),
            message: reason,
            detail,
        })
    };
    let mut output = String::new();
    if let Some(run) = &o.run_id {
        let _ = write!(output, "run {run}");
    }
    if let Some(t) = &o.timeline {
        let _ = write!(output, "\ntimeline: {}", t.display());
    }
    let output = output.trim_start();
    junit::Case {
        time: Some(o.duration),
        output: (!output.is_empty()).then(|| output.to_string()),
        ..junit::Case::new("irctl.drill", o.playbook.as_str(), verdict)
    }
}
