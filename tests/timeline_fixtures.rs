//! Timelines written by the previous release (before events were typed)
//! must read into the typed events, re-serialise to the very same bytes, and
//! still verify — through the library and through `irctl timeline verify`.
//!
//! The fixtures under `tests/fixtures/timelines/` were written by the real
//! binary of that release (a succeeded run from Git with a confirmation,
//! notifications and skips; a failed run with retries, a timeout, a refused
//! confirmation and a template error; a resumed run over a torn line and a
//! changed playbook; a run cancelled by its timeout; a drill; incident logs
//! with notes, detections and resolutions). Never regenerate them: they are
//! the compatibility contract.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::Test;
use irctl::record::verify;
use irctl::timeline::{self, Event, Payload};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/timelines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "fixtures missing in {}", dir.display());
    files
}

#[test]
fn every_event_reads_typed_and_reserialises_byte_for_byte() {
    let mut kinds = BTreeSet::new();
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n'), "{}", path.display());
        for (n, line) in text.lines().enumerate() {
            let event: Event = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}:{}: {e}", path.display(), n + 1));
            assert!(
                !matches!(event.payload, Payload::Other { .. }) && event.extra.is_empty(),
                "{}:{}: `{}` did not read into its type: {line}",
                path.display(),
                n + 1,
                event.kind()
            );
            assert_eq!(
                serde_json::to_string(&event).unwrap(),
                line,
                "{}:{}",
                path.display(),
                n + 1
            );
            kinds.insert(event.kind().to_string());
        }
        let read = timeline::read(&path).unwrap();
        assert!(read.bad_lines.is_empty() && !read.torn_tail);
        assert_eq!(read.events.len(), text.lines().count());
    }
    // Every event type irctl writes, but `engine_error` (a panicking step
    // task, which no real run can be made to produce).
    let expected = [
        "acknowledged",
        "alert_repeated",
        "approval_requested",
        "confirmation",
        "detected",
        "handoff",
        "handoff_accepted",
        "handoff_reminded",
        "note",
        "notification",
        "resolved",
        "run_cancelled",
        "run_finished",
        "run_resumed",
        "run_started",
        "step_finished",
        "step_retrying",
        "step_simulated",
        "step_skipped",
        "step_started",
        "warning",
    ];
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|k| !kinds.contains(*k))
        .collect();
    assert!(missing.is_empty(), "no fixture has {missing:?}");
}

#[test]
fn every_fixture_chain_verifies() {
    for path in fixtures() {
        let report = verify::verify(&path).unwrap();
        assert!(report.ok(), "{}: {:?}", path.display(), report.problem);
    }
}

#[test]
fn irctl_timeline_verify_accepts_them() {
    for path in fixtures() {
        let text = std::fs::read_to_string(&path).unwrap();
        let first: Event = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        let (args, expect) = if first.run_id.is_empty() {
            let log = format!("state/incidents/{}/timeline.jsonl", first.incident_id);
            let events = text.lines().count();
            (
                (
                    log,
                    vec!["--incident".to_string(), first.incident_id.clone()],
                ),
                format!(
                    "incident log of `{}`: chain intact, {events} events\n",
                    first.incident_id
                ),
            )
        } else {
            let run = format!("state/runs/{}/timeline.jsonl", first.run_id);
            (
                (run, vec![first.run_id.to_string()]),
                format!(
                    "run {}: chain intact, {} events\n",
                    first.run_id,
                    text.lines().count()
                ),
            )
        };
        let (file, target) = args;
        Test::new()
            .file(&file, &text)
            .args(["timeline", "verify", "--state-dir", "state"])
            .args(target)
            .stdout(&expect)
            .run();
    }
}
