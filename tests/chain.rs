//! The record's anchors, attacked through the real binary: a timeline
//! rewritten with recomputed hashes (a failure turned into a success, a
//! forged event, a deleted event with `seq` renumbered, the end cut off, the
//! end cut off and a `run_finished` forged) must not verify — against the
//! timeline key, or against the final hash a run printed (`--expect`); a
//! symbolic link planted at a record's path is refused; and a timeline that
//! cannot be written stops the run.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/state.rs"]
mod state;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Output, unindent};
use irctl::timeline::Event;
use state::State;

/// A timeline key long enough to be accepted.
const KEY: &str = "k3y-for-the-chain-0123456789abcdef";

/// A run whose second step fails: the kind of record worth rewriting.
const FAILING: &str = r#"
    steps:
      - id: look
        shell: echo looking
      - id: fix
        needs: [look]
        shell: echo broke; exit 3
    "#;

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(steps)
    )
}

/// One run of `steps` in a state directory, and what it printed.
struct Run {
    state: State,
    id: String,
    /// The final hash the run printed.
    hash: String,
    key: Option<&'static str>,
}

impl Run {
    fn new(steps: &str, status: i32, key: Option<&'static str>) -> Run {
        let state = State::new();
        let mut test = state.irctl().playbook("t.yaml", &playbook(steps));
        if let Some(key) = key {
            test = test.env("IRCTL_TIMELINE_KEY", key);
        }
        let out = test.args(["run", "--label", "app=t"]).status(status).run();
        let id = run_id(&out);
        let hash = final_hash(&out);
        Run {
            state,
            id,
            hash,
            key,
        }
    }

    fn path(&self) -> PathBuf {
        self.state
            .path()
            .join("runs")
            .join(&self.id)
            .join("timeline.jsonl")
    }

    fn events(&self) -> Vec<Event> {
        std::fs::read_to_string(self.path())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// `irctl timeline verify` of this run (with the run's key, if any, and `extra` args).
    fn verify(&self, extra: &[&str], status: i32) -> Output {
        let mut test = self.state.irctl();
        if let Some(key) = self.key {
            test = test.env("IRCTL_TIMELINE_KEY", key);
        }
        test.args(["timeline", "verify", &self.id])
            .args(extra)
            .status(status)
            .run()
    }

    /// Replaces the timeline with `events`, every hash recomputed the way
    /// an attacker without the key can: plain SHA-256, from an empty start.
    fn forge(&self, events: Vec<Event>) {
        let mut prev = String::new();
        let mut text = String::new();
        for mut e in events {
            e.hash = irctl::timeline::chain_hash(&prev, &e);
            prev = e.hash.clone();
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        std::fs::write(self.path(), text).unwrap();
    }
}

fn run_id(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in:\n{}", out.stdout))
        .to_string()
}

/// The hash in the summary's `timeline: PATH (final hash HASH)` line.
fn final_hash(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("timeline: "))
        .and_then(|l| l.split_once("(final hash ")?.1.split([')', ',']).next())
        .unwrap_or_else(|| panic!("no final hash in:\n{}", out.stdout))
        .to_string()
}

/// The events with `seq` renumbered from 1, as a careful forger leaves them.
fn renumbered(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.seq = i as u64 + 1;
            e
        })
        .collect()
}

/// The failed run told as a success.
fn flipped(events: Vec<Event>) -> Vec<Event> {
    use irctl::timeline::{Payload, RunStatus, StepStatus};
    events
        .into_iter()
        .map(|mut e| {
            match &mut e.payload {
                Payload::StepFinished(f) if f.status == StepStatus::Failed => {
                    f.status = StepStatus::Succeeded;
                    f.error = None;
                    if let Some(o) = &mut f.output {
                        o.exit_code = Some(0);
                    }
                }
                Payload::RunFinished(f) => f.status = RunStatus::Succeeded,
                _ => {}
            }
            e
        })
        .collect()
}

/// A plausible event nobody wrote, at position `at`.
fn forged_event(events: &[Event], at: usize) -> Vec<Event> {
    let mut out = events.to_vec();
    let mut fake = events[at].clone();
    fake.payload = irctl::timeline::Payload::Warning(irctl::timeline::Warning {
        message: "approved by the incident commander".into(),
    });
    out.insert(at, fake);
    renumbered(out)
}

/// Without `run_finished`.
fn truncated(events: &[Event]) -> Vec<Event> {
    events[..events.len() - 1].to_vec()
}

/// Cut short, with a `run_finished` that says all went well.
fn truncated_and_finished(events: &[Event]) -> Vec<Event> {
    use irctl::timeline::{Payload, RunFinished, RunStatus};
    // Keep only the first step's events: the failing one never happened.
    let mut out: Vec<Event> = events
        .iter()
        .filter(|e| e.step() != Some("fix"))
        .cloned()
        .collect();
    if let Some(last) = out.last_mut() {
        last.payload = Payload::RunFinished(RunFinished {
            status: RunStatus::Succeeded,
            duration_ms: 5,
        });
    }
    renumbered(out)
}

/// Every rewrite of a failed run's timeline this file tries.
fn attacks(events: &[Event]) -> Vec<(&'static str, Vec<Event>)> {
    let mut deleted = events.to_vec();
    deleted.remove(2);
    vec![
        ("failed turned into succeeded", flipped(events.to_vec())),
        ("a forged event", forged_event(events, 2)),
        ("a deleted event, seq renumbered", renumbered(deleted)),
        (
            "truncation plus a forged run_finished",
            truncated_and_finished(events),
        ),
    ]
}

#[test]
fn the_run_prints_its_final_hash_and_verify_expect_checks_it() {
    let run = Run::new(FAILING, 1, None);
    assert!(run.hash.starts_with("sha256:"), "{}", run.hash);
    let last = run.events().last().unwrap().hash.clone();
    assert_eq!(run.hash, format!("sha256:{last}"));
    // Unkeyed: intact, but said to be unanchored.
    let out = run.verify(&[], 0);
    assert_eq!(
        out.stdout,
        format!("run {}: chain intact, 6 events\n", run.id)
    );
    assert!(out.stderr.contains("not anchored"), "{}", out.stderr);
    assert!(out.stderr.contains(&run.hash), "{}", out.stderr);
    // The copy matches, in every form it may have been copied in.
    let bare = run.hash.trim_start_matches("sha256:").to_uppercase();
    for expect in [run.hash.as_str(), bare.as_str()] {
        let out = run.verify(&["--expect", expect], 0);
        assert!(out.stdout.contains("as expected"), "{}", out.stdout);
    }
    let other = format!("sha256:{}", "0".repeat(64));
    let out = run.verify(&["--expect", &other], 1);
    assert!(out.stdout.contains("is not the expected"), "{}", out.stdout);
}

#[test]
fn a_rewritten_unkeyed_chain_fails_against_the_printed_hash() {
    let run = Run::new(FAILING, 1, None);
    let original = std::fs::read(run.path()).unwrap();
    for (what, forged) in attacks(&run.events()) {
        run.forge(forged);
        // The chain alone cannot tell: anyone can recompute it…
        let out = run.verify(&[], 0);
        assert!(
            out.stderr.contains("not anchored"),
            "{what}: {}",
            out.stderr
        );
        // …but the copy of the final hash can.
        let out = run.verify(&["--expect", &run.hash], 1);
        assert!(
            out.stdout.contains("is not the expected"),
            "{what}: {}",
            out.stdout
        );
        std::fs::write(run.path(), &original).unwrap();
    }
    run.verify(&["--expect", &run.hash], 0);
}

#[test]
fn a_rewritten_keyed_chain_fails_against_the_key() {
    let run = Run::new(FAILING, 1, Some(KEY));
    assert!(run.hash.starts_with("hmac-sha256:"), "{}", run.hash);
    let events = run.events();
    assert!(events.iter().all(|e| e.hash.starts_with("hmac-sha256:")));
    let out = run.verify(&[], 0);
    assert!(
        out.stdout
            .contains("chain intact, 6 events, keyed and checked"),
        "{}",
        out.stdout
    );
    // The postmortem checks the run with the same key.
    let incident: serde_json::Value = serde_json::from_str(
        &run.state
            .irctl()
            .args(["runs", "--format", "json"])
            .run()
            .stdout,
    )
    .unwrap();
    let incident = incident[0]["incident_id"].as_str().unwrap().to_string();
    let pm = run
        .state
        .irctl()
        .env("IRCTL_TIMELINE_KEY", KEY)
        .args(["postmortem", "--incident", &incident])
        .run();
    assert!(
        pm.stdout.contains("6 events, keyed chain intact"),
        "{}",
        pm.stdout
    );
    let original = std::fs::read(run.path()).unwrap();
    for (what, forged) in attacks(&events) {
        // Rehashed plainly (the forger has no key)…
        run.forge(forged.clone());
        let out = run.verify(&[], 1);
        assert!(
            out.stdout
                .contains("not keyed although a timeline key is set"),
            "{what}: {}",
            out.stdout
        );
        // …or keyed with a key of their own.
        let mut prev = String::new();
        let mut text = String::new();
        let theirs = irctl::timeline::ChainKey::new(irctl::secret::Secret::new(
            "the-forgers-own-key-0123456789",
        ))
        .unwrap();
        for mut e in forged {
            e.hash = irctl::timeline::chain_hash_with(&prev, &e, Some(&theirs));
            prev = e.hash.clone();
            text.push_str(&serde_json::to_string(&e).unwrap());
            text.push('\n');
        }
        std::fs::write(run.path(), text).unwrap();
        let out = run.verify(&[], 1);
        assert!(out.stdout.contains("was altered"), "{what}: {}", out.stdout);
        std::fs::write(run.path(), &original).unwrap();
    }
    // Without the key a keyed chain cannot be checked, and says so.
    run.state
        .irctl()
        .args(["timeline", "verify", &run.id])
        .status(1)
        .stdout_contains("cannot verify")
        .stdout_contains("IRCTL_TIMELINE_KEY")
        .run();
    run.verify(&["--expect", &run.hash], 0);
}

#[test]
fn a_plain_event_appended_to_a_keyed_chain_is_a_break() {
    let run = Run::new(FAILING, 1, Some(KEY));
    let mut events = run.events();
    let mut extra = events.last().unwrap().clone();
    extra.seq += 1;
    extra.payload = irctl::timeline::Payload::Warning(irctl::timeline::Warning {
        message: "appended later".into(),
    });
    extra.hash = irctl::timeline::chain_hash(&events.last().unwrap().hash, &extra);
    events.push(extra);
    let text: String = events
        .iter()
        .map(|e| serde_json::to_string(e).unwrap() + "\n")
        .collect();
    std::fs::write(run.path(), text).unwrap();
    let out = run.verify(&[], 1);
    assert!(
        out.stdout
            .contains("is not keyed although the events before it are"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_truncated_timeline_is_incomplete_not_intact() {
    for key in [None, Some(KEY)] {
        let run = Run::new(FAILING, 1, key);
        let events = run.events();
        // Cutting lines off the end needs no rehashing at all.
        let kept: String = std::fs::read_to_string(run.path())
            .unwrap()
            .lines()
            .take(events.len() - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(run.path(), kept).unwrap();
        let out = run.verify(&[], 1);
        assert!(
            out.stdout.contains("incomplete: 5 events chain correctly")
                && out.stdout.contains("no `run_finished`"),
            "{}",
            out.stdout
        );
        assert!(!out.stdout.contains("intact"), "{}", out.stdout);
        // The same, rehashed by a forger.
        if key.is_none() {
            run.forge(truncated(&events));
            let out = run.verify(&[], 1);
            assert!(out.stdout.contains("incomplete"), "{}", out.stdout);
        }
    }
}

#[test]
fn a_wrong_or_missing_key_cannot_continue_a_keyed_timeline() {
    let run = Run::new(FAILING, 1, Some(KEY));
    let resume = |key: Option<&str>| {
        let mut test = run.state.irctl().playbook("t.yaml", &playbook(FAILING));
        if let Some(key) = key {
            test = test.env("IRCTL_TIMELINE_KEY", key);
        }
        test.args(["resume", &run.id]).status(2).run()
    };
    let out = resume(None);
    assert!(out.stderr.contains("is keyed"), "{}", out.stderr);
    let out = resume(Some("another-key-of-enough-length-42"));
    assert!(out.stderr.contains("is not the key"), "{}", out.stderr);
    // Nothing was appended either time.
    run.verify(&["--expect", &run.hash], 0);
}

#[test]
fn a_short_timeline_key_is_refused_before_the_run() {
    let state = State::new();
    state
        .irctl()
        .playbook("t.yaml", &playbook(FAILING))
        .env("IRCTL_TIMELINE_KEY", "shortkey12")
        .args(["run", "--label", "app=t"])
        .status(2)
        .stderr_contains("at least 16")
        .run();
    assert!(!state.path().join("runs").exists());
}

#[test]
fn notifications_carry_the_timeline_hash_at_send_time() {
    let server = receiver::Receiver::start(vec![(202, vec![], "{}")]);
    let run = Run::new(
        &format!(
            r#"
            steps:
              - id: look
                shell: echo looking
              - id: tell
                needs: [look]
                notify:
                  console:
                    text: "record so far {{{{ run.timeline_hash }}}}"
              - id: hook
                needs: [tell]
                notify:
                  webhook:
                    url: {hook}
              - id: page
                needs: [hook]
                notify:
                  pagerduty:
                    routing_key: R0UT1NGKEY0123456789
                    endpoint: {page}
                    summary: down
            "#,
            hook = server.url("/hook"),
            page = server.url("/page"),
        ),
        0,
        None,
    );
    let events = run.events();
    // The head before each notify step started is what it carried.
    let head_before = |step: &str| {
        let i = events
            .iter()
            .position(|e| e.step() == Some(step) && e.kind() == "step_started")
            .unwrap();
        format!("sha256:{}", events[i - 1].hash)
    };
    let console = events
        .iter()
        .find_map(|e| match &e.payload {
            irctl::timeline::Payload::Notification(n) if n.step == "tell" => n.text.clone(),
            _ => None,
        })
        .unwrap();
    assert_eq!(console, format!("record so far {}", head_before("tell")));
    let requests = server.requests();
    let hook = requests.iter().find(|r| r.path == "/hook").unwrap();
    assert_eq!(hook.headers["x-irctl-timeline-hash"], head_before("hook"));
    let page = requests.iter().find(|r| r.path == "/page").unwrap();
    let body: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    assert_eq!(
        body["payload"]["custom_details"]["irctl_timeline_hash"],
        head_before("page")
    );
    // A mid-run copy anchors the events up to it.
    let out = run.verify(&["--expect", &head_before("page")], 1);
    assert!(out.stdout.contains("after event seq"), "{}", out.stdout);
}

#[test]
fn a_symlink_planted_at_a_timeline_is_refused() {
    let run = Run::new(FAILING, 1, None);
    let elsewhere = run.state.path().join("precious.txt");
    std::fs::write(&elsewhere, "do not touch\n").unwrap();
    let original = std::fs::read(run.path()).unwrap();
    std::fs::copy(run.path(), run.state.path().join("copy.jsonl")).unwrap();
    std::fs::remove_file(run.path()).unwrap();
    std::os::unix::fs::symlink(run.state.path().join("copy.jsonl"), run.path()).unwrap();
    let out = run.verify(&[], 2);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    // A link to another file is neither appended to nor truncated by a resume.
    std::fs::remove_file(run.path()).unwrap();
    std::fs::write(&elsewhere, "do not touch").unwrap();
    std::os::unix::fs::symlink(&elsewhere, run.path()).unwrap();
    run.state
        .irctl()
        .playbook("t.yaml", &playbook(FAILING))
        .args(["resume", &run.id])
        .status(2)
        .run();
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), "do not touch");
    // A run directory that is a link is not written through either.
    std::fs::remove_file(run.path()).unwrap();
    let dir = run.path().parent().unwrap().to_path_buf();
    let moved = run.state.path().join("moved");
    std::fs::rename(&dir, &moved).unwrap();
    std::fs::write(moved.join("timeline.jsonl"), &original).unwrap();
    std::os::unix::fs::symlink(&moved, &dir).unwrap();
    run.state
        .irctl()
        .playbook("t.yaml", &playbook(FAILING))
        .args(["resume", &run.id])
        .status(2)
        .stderr_contains("is a symbolic link")
        .run();
    assert_eq!(
        std::fs::read(moved.join("timeline.jsonl")).unwrap(),
        original
    );
}

#[test]
fn a_timeline_that_cannot_be_written_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("after-ran");
    let slow_marker = dir.path().join("slow-finished");
    let books = dir.path().join("playbooks");
    std::fs::create_dir_all(&books).unwrap();
    std::fs::write(
        books.join("t.yaml"),
        playbook(&format!(
            r#"
            steps:
              - id: big
                shell: head -c 600000 /dev/zero | tr '\0' x
              - id: slow
                shell: sleep 20; touch {slow}
              - id: after
                needs: [big]
                shell: touch {marker}
            "#,
            slow = slow_marker.display(),
            marker = marker.display(),
        )),
    )
    .unwrap();
    let record = State::new();
    let state = record.path();
    let started = Instant::now();
    let out = {
        use std::os::unix::process::CommandExt as _;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"));
        cmd.current_dir(dir.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", dir.path())
            .env("XDG_CACHE_HOME", dir.path().join(".cache"))
            .env("IRCTL_STATE_DIR", &state)
            .args(["run", "--label", "app=t"]);
        // Writes past 256 KiB fail with EFBIG (after SIGXFSZ, which irctl survives).
        unsafe {
            cmd.pre_exec(|| {
                let limit = nix::libc::rlimit {
                    rlim_cur: 256 * 1024,
                    rlim_max: 256 * 1024,
                };
                if nix::libc::setrlimit(nix::libc::RLIMIT_FSIZE, &limit) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    // 74: the record could not be written (not an input error).
    assert_eq!(out.status.code(), Some(74), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the record could not be written")
            && stderr.contains("cannot write timeline `")
            && stderr.contains("timeline.jsonl"),
        "{stderr}"
    );
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(!marker.exists(), "a step started after the record failed");
    assert!(!slow_marker.exists(), "a running step was not stopped");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the run went on after the record failed: {:?}",
        started.elapsed()
    );
    // What was written is still there and still chains, as an incomplete prefix.
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .unwrap()
        .to_string();
    let text =
        std::fs::read_to_string(state.join("runs").join(&id).join("timeline.jsonl")).unwrap();
    assert!(text.starts_with("{\"ts\""));
    assert!(text.contains("\"type\":\"run_started\""));
    assert!(text.contains("\"type\":\"step_started\""));
    // The part of the line that did not fit was cut off again: no torn line.
    assert!(
        text.ends_with('\n'),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );
    record
        .irctl()
        .args(["timeline", "verify", &id])
        .status(1)
        .stdout_contains("incomplete")
        .run();
}
