//! JUnit XML, the test report every CI system reads: a report holds suites,
//! a suite holds cases, and a case passed, failed (an expectation did not
//! hold) or broke (it could not be judged).
//!
//! Callers describe their results in the small model below; `quick-junit`
//! writes the XML (escaping, counts, the declaration). It drops characters
//! XML 1.0 cannot carry (most control characters, ANSI color codes) rather
//! than failing the report.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use quick_junit::{NonSuccessKind, TestCaseStatus};

use crate::diagnostic::Diagnostic;

/// A whole report: the `<testsuites>` root.
#[derive(Clone, Debug)]
pub struct Report {
    /// The root's name, e.g. `irctl drill`.
    pub name: String,
    /// Total wall time, when the results have one.
    pub time: Option<Duration>,
    /// The suites, in order.
    pub suites: Vec<Suite>,
}

/// One `<testsuite>`.
#[derive(Clone, Debug)]
pub struct Suite {
    /// Its name.
    pub name: String,
    /// Its wall time, when the results have one.
    pub time: Option<Duration>,
    /// Its cases, in order.
    pub cases: Vec<Case>,
}

/// One `<testcase>`.
#[derive(Clone, Debug)]
pub struct Case {
    /// The `classname` CI systems group by, e.g. `irctl.drill`.
    pub classname: String,
    /// Its name.
    pub name: String,
    /// The file the case is written in.
    pub file: Option<String>,
    /// The line the case is written on.
    pub line: Option<u32>,
    /// Its wall time.
    pub time: Option<Duration>,
    /// How it ended.
    pub verdict: Verdict,
    /// Text for `<system-out>`.
    pub output: Option<String>,
}

/// How a case ended.
#[derive(Clone, Debug)]
pub enum Verdict {
    /// It passed.
    Passed,
    /// An expectation did not hold: `<failure>`.
    Failed(Problem),
    /// It could not be judged: `<error>`.
    Broken(Problem),
}

/// What went wrong in a failed or broken case.
#[derive(Clone, Debug)]
pub struct Problem {
    /// The `type` attribute: a stable code such as `drill-failed`.
    pub kind: String,
    /// The one-line `message` attribute CI systems show first.
    pub message: String,
    /// The element's text: the whole story.
    pub detail: String,
}

impl Case {
    /// A case with no file, line, time or output.
    pub fn new(classname: impl Into<String>, name: impl Into<String>, verdict: Verdict) -> Self {
        Case {
            classname: classname.into(),
            name: name.into(),
            file: None,
            line: None,
            time: None,
            verdict,
            output: None,
        }
    }

    fn to_junit(&self) -> quick_junit::TestCase {
        let status = match &self.verdict {
            Verdict::Passed => TestCaseStatus::success(),
            Verdict::Failed(p) => problem(NonSuccessKind::Failure, p),
            Verdict::Broken(p) => problem(NonSuccessKind::Error, p),
        };
        let mut case = quick_junit::TestCase::new(self.name.as_str(), status);
        case.set_classname(self.classname.as_str());
        if let Some(time) = self.time {
            case.set_time(time);
        }
        if let Some(file) = &self.file {
            case.extra.insert("file".into(), file.into());
        }
        if let Some(line) = self.line {
            case.extra.insert("line".into(), line.to_string().into());
        }
        if let Some(output) = &self.output {
            case.set_system_out(output.as_str());
        }
        case
    }
}

fn problem(kind: NonSuccessKind, p: &Problem) -> TestCaseStatus {
    let mut status = TestCaseStatus::non_success(kind);
    status
        .set_type(p.kind.as_str())
        .set_message(p.message.as_str())
        .set_description(p.detail.as_str());
    status
}

impl Report {
    /// The XML document, declaration first, ending in a newline.
    pub fn to_xml(&self) -> anyhow::Result<String> {
        let mut report = quick_junit::Report::new(self.name.as_str());
        if let Some(time) = self.time {
            report.set_time(time);
        }
        for suite in &self.suites {
            let mut s = quick_junit::TestSuite::new(suite.name.as_str());
            if let Some(time) = suite.time {
                s.set_time(time);
            }
            s.add_test_cases(suite.cases.iter().map(Case::to_junit));
            report.add_test_suite(s);
        }
        report
            .to_string()
            .with_context(|| format!("cannot write the `{}` JUnit report", self.name))
    }
}

/// `irctl validate` as JUnit: one case per playbook file (every file checked
/// is listed, clean ones too); a file with errors, or with warnings when
/// they are denied, fails with its first error; other findings go to
/// `<system-out>`.
pub fn diagnostics(
    diags: &[Diagnostic],
    files: &[String],
    deny_warnings: bool,
) -> anyhow::Result<String> {
    let mut by_file: BTreeMap<&str, Vec<&Diagnostic>> =
        files.iter().map(|f| (f.as_str(), Vec::new())).collect();
    for d in diags {
        by_file.entry(d.file.as_str()).or_default().push(d);
    }
    let cases = by_file.iter().map(|(file, ds)| {
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
        // The first error names the failure, even when a warning comes first.
        let first = ds
            .iter()
            .find(|d| d.is_error())
            .or_else(|| ds.first().filter(|_| deny_warnings));
        let (verdict, output) = match first {
            Some(first) => (
                Verdict::Failed(Problem {
                    kind: first.code.to_string(),
                    message: first.message.clone(),
                    detail: text,
                }),
                None,
            ),
            None => (Verdict::Passed, (!ds.is_empty()).then_some(text)),
        };
        Case {
            output,
            ..Case::new("irctl.validate", *file, verdict)
        }
    });
    Report {
        name: "irctl validate".into(),
        time: None,
        suites: vec![Suite {
            name: "irctl validate".into(),
            time: None,
            cases: cases.collect(),
        }],
    }
    .to_xml()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::Pos;

    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).expect("well-formed XML")
    }

    fn hostile() -> String {
        "<a & \"b\" 'c'>]]></testcase>\u{1b}[31mred\u{1b}[0m\u{7}bell".to_string()
    }

    #[test]
    fn hostile_text_stays_text_in_attributes_and_content() {
        let problem = Problem {
            kind: hostile(),
            message: hostile(),
            detail: hostile(),
        };
        let mut case = Case::new(hostile(), hostile(), Verdict::Failed(problem));
        case.file = Some(hostile());
        case.line = Some(7);
        case.output = Some(hostile());
        let xml = Report {
            name: hostile(),
            time: None,
            suites: vec![Suite {
                name: hostile(),
                time: None,
                cases: vec![case],
            }],
        }
        .to_xml()
        .unwrap();
        let doc = parse(&xml);
        // Control characters and color codes cannot be carried; the rest is kept verbatim.
        let kept = "<a & \"b\" 'c'>]]></testcase>redbell";
        let root = doc.root_element();
        assert_eq!(root.attribute("name"), Some(kept));
        let case = doc
            .descendants()
            .find(|n| n.has_tag_name("testcase"))
            .unwrap();
        for attr in ["name", "classname", "file"] {
            assert_eq!(case.attribute(attr), Some(kept), "{attr}");
        }
        assert_eq!(case.attribute("line"), Some("7"));
        let failure = case.children().find(|n| n.has_tag_name("failure")).unwrap();
        assert_eq!(failure.attribute("type"), Some(kept));
        assert_eq!(failure.attribute("message"), Some(kept));
        assert_eq!(failure.text(), Some(kept));
        let out = case
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .unwrap();
        assert_eq!(out.text(), Some(kept));
        assert_eq!(doc.descendants().filter(|n| n.is_element()).count(), 5);
    }

    #[test]
    fn counts_failures_and_errors_and_writes_times() {
        let problem = || Problem {
            kind: "k".into(),
            message: "m".into(),
            detail: "d".into(),
        };
        let mut timed = Case::new("c", "passes", Verdict::Passed);
        timed.time = Some(Duration::from_millis(1500));
        let xml = Report {
            name: "r".into(),
            time: Some(Duration::from_millis(2250)),
            suites: vec![Suite {
                name: "s".into(),
                time: Some(Duration::from_millis(2250)),
                cases: vec![
                    timed,
                    Case::new("c", "fails", Verdict::Failed(problem())),
                    Case::new("c", "breaks", Verdict::Broken(problem())),
                ],
            }],
        }
        .to_xml()
        .unwrap();
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(xml.ends_with("</testsuites>\n"));
        let doc = parse(&xml);
        for node in [
            doc.root_element(),
            doc.descendants()
                .find(|n| n.has_tag_name("testsuite"))
                .unwrap(),
        ] {
            assert_eq!(node.attribute("tests"), Some("3"));
            assert_eq!(node.attribute("failures"), Some("1"));
            assert_eq!(node.attribute("errors"), Some("1"));
            assert_eq!(node.attribute("time"), Some("2.250"));
        }
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        assert_eq!(cases[0].attribute("time"), Some("1.500"));
        assert_eq!(cases[1].attribute("time"), None);
        assert!(cases[1].children().any(|n| n.has_tag_name("failure")));
        assert!(cases[2].children().any(|n| n.has_tag_name("error")));
    }

    #[test]
    fn validate_fails_files_with_errors_and_lists_clean_ones() {
        let diags = [
            Diagnostic::warning("b.yaml", Pos::new(2, 7), "no-drill", "no drill"),
            Diagnostic::error("c.yaml", Pos::new(3, 1), "schema", "bad <x>"),
        ];
        let files = ["a.yaml", "b.yaml", "c.yaml"].map(String::from);
        let xml = diagnostics(&diags, &files, false).unwrap();
        let doc = parse(&xml);
        assert_eq!(doc.root_element().attribute("failures"), Some("1"));
        let cases: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("testcase"))
            .collect();
        let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
        assert_eq!(names, ["a.yaml", "b.yaml", "c.yaml"]);
        assert_eq!(cases[0].children().filter(|n| n.is_element()).count(), 0);
        let out = cases[1].first_element_child().unwrap();
        assert!(out.has_tag_name("system-out"));
        assert_eq!(
            out.text(),
            Some("b.yaml:2:7: warning[no-drill]: no drill\n")
        );
        let failure = cases[2].first_element_child().unwrap();
        assert_eq!(failure.attribute("type"), Some("schema"));
        assert_eq!(failure.attribute("message"), Some("bad <x>"));

        let denied = diagnostics(&diags, &files, true).unwrap();
        assert_eq!(
            parse(&denied).root_element().attribute("failures"),
            Some("2")
        );
    }
}
