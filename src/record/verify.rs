//! Chain verification: proves a timeline is exactly what was written, or
//! names the first event that was altered, removed or reordered.
//!
//! Each event's `hash` is SHA-256 over the previous event's hash and its own
//! canonical JSON ([`timeline::chain_hash`]). Walking the file, the first
//! event whose recomputed hash differs is the first break; its `seq` tells
//! which kind: the expected `seq` with a bad hash is an edit, a later `seq`
//! whose missing predecessors appear further down is a reordering, and one
//! whose predecessors are nowhere is a removal. A torn last line (a killed
//! writer) is not tampering; it is reported separately.
//!
//! A chain anyone can recompute proves nothing against someone who can write
//! the state directory. So the report says how the chain is anchored: keyed
//! events (HMAC-SHA256, see [`timeline::chain`]) are checked with the
//! timeline key — without it they cannot be checked at all, which is a
//! finding — and a plain event after keyed ones is a break (a rewrite by
//! someone without the key). The final hash ([`Report::head`]) is what a
//! copy outside the state directory (`--expect`) is compared with. A run
//! whose last start has no `run_finished` is [`Report::finished`] `false`:
//! cutting events off the end leaves an intact but incomplete chain.

use std::path::Path;

use serde::Serialize;

use crate::timeline::chain::KEY_SECRET;
use crate::timeline::{self, ChainKey, Event, Payload, Scheme};

/// What kind of break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Break {
    /// An event's content does not match its hash.
    Altered,
    /// Events are missing before this one.
    Removed,
    /// This event is out of order.
    Reordered,
    /// A line that is not an event, before the last line.
    Corrupt,
    /// A plain event after keyed ones: written by someone without the key.
    Unkeyed,
    /// A keyed event, and no key to check it with.
    Unchecked,
}

/// The first break in a chain.
#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    /// Which kind.
    pub kind: Break,
    /// The 1-based line in the file.
    pub line: usize,
    /// The `seq` the chain expected at that line.
    pub expected_seq: u64,
    /// What happened, for people.
    pub message: String,
}

/// The result of verifying one file.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// Complete events read.
    pub events: usize,
    /// Whether the last line was torn (ignored).
    pub torn_tail: bool,
    /// Whether the run's last start is followed by `run_finished`.
    pub finished: bool,
    /// The first break, if any.
    pub problem: Option<Problem>,
    /// The scheme of the last event (`None` for an empty file).
    pub scheme: Option<Scheme>,
    /// The hash of the last event of the intact chain: the final hash when
    /// there is no problem.
    pub head: String,
}

impl Report {
    /// Whether the chain is intact.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
    }
}

/// Verifies the chained JSONL file at `path` without a timeline key: a
/// keyed event is a problem ([`Break::Unchecked`]).
pub fn verify(path: &Path) -> anyhow::Result<Report> {
    verify_with(path, None)
}

/// Verifies the chained JSONL file at `path`, checking keyed events with `key`.
pub fn verify_with(path: &Path, key: Option<&ChainKey>) -> anyhow::Result<Report> {
    let text = timeline::read_bytes(path)?;
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.split('\n').collect();
    // `split` yields a final "" after a trailing newline; that is not a line.
    let count = if text.ends_with('\n') {
        lines.len() - 1
    } else {
        lines.len()
    };
    let mut parsed: Vec<(usize, Event)> = Vec::new();
    let mut report = Report {
        events: 0,
        torn_tail: false,
        finished: false,
        problem: None,
        scheme: None,
        head: String::new(),
    };
    for (i, line) in lines.iter().take(count).enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Event>(line) {
            Ok(e) => parsed.push((i + 1, e)),
            Err(_) if i + 1 == count && !text.ends_with('\n') => report.torn_tail = true,
            Err(e) => {
                report.problem.get_or_insert(Problem {
                    kind: Break::Corrupt,
                    line: i + 1,
                    expected_seq: 0,
                    message: format!("line {} is not a timeline event ({})", i + 1, reason(&e)),
                });
            }
        }
    }
    report.events = parsed.len();
    report.finished = parsed
        .iter()
        .rev()
        .find(|(_, e)| {
            matches!(
                e.payload,
                Payload::RunFinished(_) | Payload::RunStarted(_) | Payload::RunResumed(_)
            )
        })
        .is_some_and(|(_, e)| matches!(e.payload, Payload::RunFinished(_)));

    report.scheme = parsed.last().map(|(_, e)| Scheme::of(&e.hash));
    let mut prev = String::new();
    let mut expected = 1u64;
    for (n, (line, e)) in parsed.iter().enumerate() {
        if report.problem.as_ref().is_some_and(|p| p.line < *line) {
            break;
        }
        let scheme = Scheme::of(&e.hash);
        let what = || format!("event seq {} (`{}`) at line {line}", e.seq, e.kind());
        if scheme == Scheme::Plain && Scheme::of(&prev) == Scheme::Keyed {
            let what = what();
            report.problem = Some(Problem {
                kind: Break::Unkeyed,
                line: *line,
                expected_seq: expected,
                message: format!(
                    "{what} is not keyed although the events before it are: it was written by someone without the timeline key"
                ),
            });
            break;
        }
        let computed = match (scheme, key) {
            (Scheme::Plain, _) => timeline::chain_hash(&prev, e),
            (Scheme::Keyed, Some(key)) => timeline::chain_hash_with(&prev, e, Some(key)),
            (Scheme::Keyed, None) => {
                let what = what();
                report.problem = Some(Problem {
                    kind: Break::Unchecked,
                    line: *line,
                    expected_seq: expected,
                    message: format!(
                        "the chain is keyed from {what} on, and no timeline key (`{KEY_SECRET}`) was given to check it"
                    ),
                });
                break;
            }
        };
        if computed == e.hash && e.seq == expected {
            prev = e.hash.clone();
            report.head = prev.clone();
            expected += 1;
            continue;
        }
        let what = what();
        let rest = &parsed[n + 1..];
        let problem = if e.seq == expected {
            Problem {
                kind: Break::Altered,
                line: *line,
                expected_seq: expected,
                message: if scheme == Scheme::Keyed {
                    format!(
                        "{what} was altered: its content does not match its keyed hash (or the timeline key is not the one it was written with)"
                    )
                } else {
                    format!("{what} was altered: its content does not match its hash")
                },
            }
        } else if e.seq < expected || rest.iter().any(|(_, later)| later.seq == expected) {
            let missing_at = rest
                .iter()
                .find(|(_, later)| later.seq == expected)
                .map(|(l, _)| format!(" (seq {expected} is at line {l})"))
                .unwrap_or_default();
            Problem {
                kind: Break::Reordered,
                line: *line,
                expected_seq: expected,
                message: format!(
                    "{what} is out of order: expected seq {expected} here{missing_at}"
                ),
            }
        } else {
            let gap = if e.seq == expected + 1 {
                format!("seq {expected}")
            } else {
                format!("seq {expected}..{}", e.seq.saturating_sub(1))
            };
            Problem {
                kind: Break::Removed,
                line: *line,
                expected_seq: expected,
                message: format!("event {gap} was removed before {what}"),
            }
        };
        report.problem = Some(problem);
        break;
    }
    Ok(report)
}

/// serde's reason without its "at line 1 column N": each line is parsed on
/// its own, so its line number would contradict the file's.
fn reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rsplit_once(" at line ") {
        Some((why, _)) => format!("{why} at column {}", e.column()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Redactor;

    /// A real three-event timeline written by the timeline writer.
    fn written() -> (tempfile::TempDir, std::path::PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.jsonl");
        let mut w = timeline::Writer::open(&path, &"r".into(), "i", Redactor::default()).unwrap();
        w.append(timeline::Warning {
            message: "starting".into(),
        })
        .unwrap();
        w.append(timeline::StepSkipped {
            step: "s".into(),
            status: timeline::StepStatus::Skipped,
            reason: "when was false: no".into(),
        })
        .unwrap();
        w.append(timeline::RunFinished {
            status: timeline::RunStatus::Succeeded,
            duration_ms: 5,
        })
        .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        (dir, path, text)
    }

    #[test]
    fn a_torn_tail_is_not_tampering() {
        let (_dir, path, text) = written();
        std::fs::write(&path, format!("{text}{{\"ts\":\"20")).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.ok() && r.torn_tail && r.finished);
        assert_eq!(r.events, 3);
    }

    #[test]
    fn a_garbled_middle_line_is_corrupt_and_a_cut_end_is_unfinished() {
        let (_dir, path, text) = written();
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\nnot json\n{}\n", lines[0], lines[2])).unwrap();
        let p = verify(&path).unwrap().problem.unwrap();
        assert_eq!((p.kind, p.line), (Break::Corrupt, 2));
        std::fs::write(&path, format!("{}\n{}\n", lines[0], lines[1])).unwrap();
        let r = verify(&path).unwrap();
        assert!(r.ok() && !r.finished);
    }
}
