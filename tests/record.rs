//! The record after the fire: `runs`, `timeline`, `timeline verify`, `note`,
//! `resolve`, `ingest` and `stats` on real runs of the real binary, in one
//! shared state directory per test.

mod common;
#[path = "support/state.rs"]
mod state;
#[path = "support/wait.rs"]
mod wait;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Output, Test, unindent};
use state::{NOW, State, alertmanager};
use wait::wait_until;

/// What only the record tests ask of the shared state directory.
impl State {
    /// Runs `steps` as playbook `t` for the ad hoc incident `app=t`; returns the run id.
    fn run(&self, steps: &str, status: i32) -> String {
        let out = self
            .irctl()
            .playbook("t.yaml", &playbook(steps))
            .args(["run", "--label", "app=t", "--label", "service=api"])
            .status(status)
            .run();
        run_id(&out)
    }

    /// Lists runs as JSON.
    fn runs(&self) -> Vec<serde_json::Value> {
        let out = self.irctl().args(["runs", "--format", "json"]).run();
        out.json().as_array().expect("an array").clone()
    }

    fn timeline_file(&self, run_id: &str) -> PathBuf {
        self.path().join("runs").join(run_id).join("timeline.jsonl")
    }
}

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nowner: team-api\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(steps)
    )
}

const STEPS: &str = r#"
    steps:
      - id: look
        shell: echo looking
      - id: fix
        needs: [look]
        shell: echo fixed
    "#;

/// The run id `irctl run` prints first on stdout.
fn run_id(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in:\n{}", out.stdout))
        .to_string()
}

fn incident_of(state: &State, run: &str) -> String {
    state
        .runs()
        .iter()
        .find(|r| r["run_id"] == run)
        .and_then(|r| r["incident_id"].as_str())
        .expect("the run is listed")
        .to_string()
}

#[test]
fn runs_lists_and_filters_real_runs() {
    let state = State::new();
    let ok = state.run(STEPS, 0);
    let failed = state.run("steps:\n  - id: boom\n    shell: exit 3\n", 1);
    let out = state.irctl().arg("runs").run();
    for text in [
        ok.as_str(),
        failed.as_str(),
        "succeeded",
        "failed",
        "DRILL",
        "PLAYBOOK",
    ] {
        assert!(out.stdout.contains(text), "{text} missing:\n{}", out.stdout);
    }
    let runs = state.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[1]["status"], "failed");
    assert_eq!(runs[0]["playbook"], "t");
    assert_eq!(runs[0]["drill"], false);
    let incident = runs[0]["incident_id"].as_str().unwrap().to_string();
    // Filters: by incident, by playbook, by time.
    let by_incident = state
        .irctl()
        .args(["runs", "--format", "json", "--incident", &incident])
        .run()
        .json();
    assert_eq!(by_incident.as_array().unwrap().len(), 2);
    let none = state
        .irctl()
        .args(["runs", "--format", "json", "--playbook", "other"])
        .run()
        .json();
    assert_eq!(none, serde_json::json!([]));
    // The runs happened after the fixed clock's "now", so `--since 1d` keeps them…
    let recent = state
        .irctl()
        .args(["runs", "--format", "json", "--since", "1d"])
        .run()
        .json();
    assert_eq!(recent.as_array().unwrap().len(), 2);
    // …and a time after them drops them.
    let later = state
        .irctl()
        .args([
            "runs",
            "--format",
            "json",
            "--since",
            "2999-01-01T00:00:00Z",
        ])
        .run()
        .json();
    assert_eq!(later, serde_json::json!([]));
    state
        .irctl()
        .args(["runs", "--since", "yesterday"])
        .status(2)
        .stderr_contains("`--since`")
        .run();
}

#[test]
fn timeline_shows_a_run_as_table_json_and_markdown() {
    let state = State::new();
    let run = state.run(STEPS, 0);
    let table = state.irctl().args(["timeline", &run]).run();
    let json = state
        .irctl()
        .args(["timeline", &run, "--format", "json"])
        .run()
        .json();
    let markdown = state
        .irctl()
        .args(["timeline", &run, "--format", "markdown"])
        .run();
    // JSON is the raw events, exactly as in the file.
    let file = std::fs::read_to_string(state.timeline_file(&run)).unwrap();
    let raw: Vec<serde_json::Value> = file
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(json, serde_json::Value::Array(raw));
    assert!(
        markdown
            .stdout
            .starts_with("| Time (UTC) | Event | Step | Details |\n")
    );
    insta::with_settings!({ filters => table_filters() }, {
        insta::assert_snapshot!("timeline_table", table.stdout);
        insta::assert_snapshot!("timeline_markdown", markdown.stdout);
    });
    state
        .irctl()
        .args(["timeline", "20000101T000000Z-abcdef"])
        .status(2)
        .stderr_contains("no run `20000101T000000Z-abcdef`")
        .run();
    state
        .irctl()
        .args(["runs", "--playbook", "other"])
        .stdout("")
        .stderr_contains("no runs match these filters in `")
        .run();
}

/// Filters for what differs between runs: times, run ids, durations, widths.
fn table_filters() -> Vec<(&'static str, &'static str)> {
    let mut filters = state::filters();
    filters.extend([("─+", "───"), (" {2,}", "  "), (r" +\n", "\n")]);
    filters
}

#[test]
fn verify_confirms_an_untouched_chain_and_names_the_first_tampered_event() {
    let state = State::new();
    let run = state.run(STEPS, 0);
    state
        .irctl()
        .args(["timeline", "verify", &run])
        .stdout(&format!("run {run}: chain intact, 6 events\n"))
        .run();
    let path = state.timeline_file(&run);
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    let tamper = |text: String, expect: &str| {
        std::fs::write(&path, text).unwrap();
        let out = state
            .irctl()
            .args(["timeline", "verify", &run])
            .status(1)
            .run();
        assert!(
            out.stdout.contains(expect),
            "expected {expect:?} in:\n{}",
            out.stdout
        );
        std::fs::write(&path, &original).unwrap();
    };
    // Edit a field of event 2 (the first step's command).
    let mut edited = lines.clone();
    let changed = lines[1].replace("echo looking", "echo nothing");
    assert_ne!(changed, lines[1]);
    edited[1] = &changed;
    tamper(
        edited.join("\n") + "\n",
        "event seq 2 (`step_started`) at line 2 was altered",
    );
    // Delete event 3.
    let mut deleted = lines.clone();
    deleted.remove(2);
    tamper(
        deleted.join("\n") + "\n",
        "event seq 3 was removed before event seq 4",
    );
    // Swap events 4 and 5.
    let mut swapped = lines.clone();
    swapped.swap(3, 4);
    tamper(
        swapped.join("\n") + "\n",
        "event seq 5 (`step_finished`) at line 4 is out of order: expected seq 4 here (seq 4 is at line 5)",
    );
    // Restored, it verifies again.
    state.irctl().args(["timeline", "verify", &run]).run();
}

#[test]
fn a_killed_run_with_a_torn_line_still_reads_everywhere() {
    let state = State::new();
    let pid_dir = tempfile::tempdir().unwrap();
    let pid_file = pid_dir.path().join("step.pid");
    let test = state.irctl().playbook(
        "t.yaml",
        &playbook(&format!(
            r#"
            steps:
              - id: first
                shell: echo first
              - id: hang
                needs: [first]
                shell: echo $$ > {pid}; exec sleep 60
              - id: after
                needs: [hang]
                shell: echo after
            "#,
            pid = pid_file.display()
        )),
    );
    let mut child = {
        use std::os::unix::process::CommandExt as _;
        std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
            .current_dir(test.path())
            .env("IRCTL_STATE_DIR", state.path())
            .args(["run", "--label", "app=t"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start irctl")
    };
    let start = Instant::now();
    let step_pid: i32 = wait_until(
        start + Duration::from_secs(30),
        Duration::from_millis(50),
        "the hanging step never started",
        || {
            std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse().ok())
        },
    );
    // SIGKILL irctl's whole process group: no handler runs, nothing is flushed late.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let _ = wait_until(
        start + Duration::from_secs(30),
        Duration::from_millis(50),
        "irctl survived SIGKILL",
        || child.try_wait().unwrap(),
    );
    // The step runs in its own process group; stop it too.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(step_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let runs = state.runs();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "unfinished");
    let run = runs[0]["run_id"].as_str().unwrap().to_string();
    let incident = runs[0]["incident_id"].as_str().unwrap().to_string();
    let path = state.timeline_file(&run);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'), "a complete line was left torn");
    assert!(!text.contains("run_finished"));

    // Every command works on what the killed run left (which is not
    // intact: nothing says how it ended)…
    let out = state
        .irctl()
        .args(["timeline", "verify", &run])
        .status(1)
        .stdout_contains("incomplete: 4 events chain correctly")
        .stdout_contains("no `run_finished` after the last start")
        .run();
    assert!(!out.stdout.contains("intact"), "{}", out.stdout);
    state
        .irctl()
        .args(["timeline", &run])
        .stdout_contains("step_started")
        .run();
    let pm = state
        .irctl()
        .args(["postmortem", "--incident", &incident])
        .run();
    assert!(pm.stdout.contains(&format!("Run {run}: t, unfinished")));
    assert!(
        pm.stdout.contains("| hang | started | 1 |"),
        "{}",
        pm.stdout
    );
    assert!(pm.stdout.contains("| after | not_started | 0 |"));
    // The draft's integrity section says what `verify` says: not intact.
    assert!(
        pm.stdout.contains("incomplete: 4 events chain correctly"),
        "{}",
        pm.stdout
    );

    // …and on a torn last line, with a warning.
    std::fs::write(&path, format!("{text}{{\"ts\":\"2026-01-01T00:")).unwrap();
    for args in [
        vec!["runs"],
        vec!["timeline", &run],
        vec!["postmortem", "--incident", &incident],
        vec!["stats"],
    ] {
        state
            .irctl()
            .args(&args)
            .stderr_contains("torn last line")
            .run();
    }
    state
        .irctl()
        .args(["timeline", "verify", &run])
        .status(1)
        .stdout_contains("incomplete: 4 events chain correctly")
        .stderr_contains("torn")
        .run();
}

#[test]
fn notes_from_two_authors_merge_in_time_order_with_the_runs() {
    let state = State::new();
    let run = state.run(STEPS, 0);
    let incident = incident_of(&state, &run);
    // Written out of order; `--at` says when each really happened.
    state
        .irctl()
        .args(["note", "--incident", &incident, "--author", "bob"])
        .args(["--at", "2000-01-01T10:06:00Z", "second, by bob"])
        .stdout(&format!(
            "noted on incident {incident} at 2000-01-01T10:06:00Z (event 1)\n"
        ))
        .run();
    state
        .irctl()
        .args(["note", "--run", &run, "--at", "2000-01-01T10:05:00Z"])
        .arg("first, by alice")
        .run();
    state
        .irctl()
        .args(["note", "--incident", &incident, "after the run, by alice"])
        .run();
    let events = state
        .irctl()
        .args(["timeline", "--incident", &incident, "--format", "json"])
        .run()
        .json();
    let kinds: Vec<String> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| match e["type"].as_str().unwrap() {
            "note" => format!(
                "note {}: {}",
                e["author"].as_str().unwrap(),
                e["text"].as_str().unwrap()
            ),
            other => other.to_string(),
        })
        .collect();
    // The fixed clock (2000-01-02) puts the undated note before the run (now).
    assert_eq!(
        kinds,
        [
            "note alice: first, by alice",
            "note bob: second, by bob",
            "note alice: after the run, by alice",
            "run_started",
            "step_started",
            "step_finished",
            "step_started",
            "step_finished",
            "run_finished",
        ]
    );
    // The note given with `--run` is attributed to that run, and shown with it.
    let alice = &events[0];
    assert_eq!(alice["run_id"], run.as_str());
    let run_view = state.irctl().args(["timeline", &run]).run();
    assert!(run_view.stdout.contains("alice: first, by alice"));
    assert!(!run_view.stdout.contains("second, by bob"));
    let table = state
        .irctl()
        .args(["timeline", "--incident", &incident])
        .run();
    assert!(table.stdout.contains("alice: first, by alice"));
    assert!(table.stdout.contains("RUN"));
    state
        .irctl()
        .args(["timeline", "verify", "--incident", &incident])
        .stdout_contains(&format!(
            "incident log of `{incident}`: chain intact, 3 events"
        ))
        .run();
}

#[test]
fn concurrent_notes_are_all_kept_in_one_intact_chain() {
    let state = State::new();
    let run = state.run(STEPS, 0);
    let incident = incident_of(&state, &run);
    let children: Vec<std::process::Child> = (0..8)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
                .env("IRCTL_STATE_DIR", state.path())
                .args(["note", "--incident", &incident, "--author"])
                .arg(format!("responder-{i}"))
                .arg(format!("note {i}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start irctl note")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for mut child in children {
        let status = wait_until(deadline, Duration::from_millis(20), "a note hung", || {
            child.try_wait().unwrap()
        });
        assert!(status.success());
    }
    state
        .irctl()
        .args(["timeline", "verify", "--incident", &incident])
        .stdout_contains("chain intact, 8 events")
        .run();
}

#[test]
fn a_torn_note_is_cut_off_before_the_next_note_and_an_edited_line_is_not_torn() {
    let state = State::new();
    state
        .irctl()
        .args(["note", "--create", "--incident", "INC-9", "first"])
        .run();
    let log = irctl::record::incident_log::path(&state.path(), "INC-9");
    // `irctl note` killed mid-write: half an event, no newline.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, br#"{"ts":"2000-01-0"#).unwrap();
    drop(file);
    state
        .irctl()
        .args(["note", "--incident", "INC-9", "second"])
        .stderr("")
        .run();
    state
        .irctl()
        .args(["timeline", "verify", "--incident", "INC-9"])
        .stdout_contains("incident log of `INC-9`: chain intact, 2 events")
        .run();
    state
        .irctl()
        .args(["timeline", "--incident", "INC-9"])
        .stdout_contains("alice: second")
        .run();
    // A complete line that does not parse was edited, not torn.
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"{\"edited\": true}\n").unwrap();
    drop(file);
    let out = state
        .irctl()
        .args(["timeline", "--incident", "INC-9"])
        .stderr_contains("line 3 of `")
        .stderr_contains("is not a timeline event; skipped")
        .run();
    assert!(!out.stderr.contains("torn"), "{}", out.stderr);
    state
        .irctl()
        .args(["timeline", "verify", "--incident", "INC-9"])
        .status(1)
        .stdout_contains(
            "chain broken: line 3 is not a timeline event (missing field `ts` at column",
        )
        .run();
}

#[test]
fn a_note_on_a_run_with_no_readable_events_is_refused() {
    let state = State::new();
    let run = state.run(STEPS, 0);
    std::fs::write(state.timeline_file(&run), "").unwrap();
    state
        .irctl()
        .args(["note", "--run", &run, "hello"])
        .status(2)
        .stderr_contains(&format!("error: run `{run}` has no readable events in `"))
        .stderr_contains("note on the incident with `--incident ID`")
        .run();
    assert!(!state.path().join("incidents").exists());
}

#[test]
fn a_note_never_waits_forever_on_a_stuck_lock_holder() {
    let state = State::new();
    state
        .irctl()
        .args(["note", "--create", "--incident", "INC-5", "first"])
        .run();
    // A process stopped while holding the log's lock (here: this test).
    let log = irctl::record::incident_log::path(&state.path(), "INC-5");
    let lock = std::fs::File::open(log.with_file_name("timeline.lock")).unwrap();
    lock.lock().unwrap();
    let start = Instant::now();
    state
        .irctl()
        .args(["note", "--incident", "INC-5", "second"])
        .status(2)
        .stderr_contains("timeline.lock` has been locked by another irctl process for over 5s")
        .run();
    assert!(start.elapsed() < Duration::from_secs(30));
    drop(lock);
    state
        .irctl()
        .args(["note", "--incident", "INC-5", "second"])
        .run();
}

#[test]
fn note_needs_a_target_and_text_and_rejects_bad_times() {
    let state = State::new();
    state
        .irctl()
        .args(["note", "hello"])
        .status(2)
        .stderr_contains("--incident")
        .run();
    state
        .irctl()
        .args(["note", "--incident", "x", "--at", "10am", "hello"])
        .status(2)
        .stderr_contains("`--at`: invalid time `10am`")
        .run();
    // A mistyped year would skew every report: the future is refused.
    state
        .irctl()
        .args(["resolve", "--incident", "x", "--at", "2100-01-01T00:00:00Z"])
        .status(2)
        .stderr_contains(
            "error: `--at 2100-01-01T00:00:00Z` is in the future (now is 2000-01-02T00:00:00Z)",
        )
        .run();
    state
        .irctl()
        .args(["note", "--run", "20000101T000000Z-abcdef", "hello"])
        .status(2)
        .stderr_contains("no run `20000101T000000Z-abcdef`")
        .run();
    // Control characters in a note never reach the terminal raw.
    state
        .irctl()
        .args([
            "note",
            "--create",
            "--incident",
            "INC-7",
            "\x1b]8;;http://evil\x07click\x1b[2J",
        ])
        .run();
    let shown = state
        .irctl()
        .args(["timeline", "--incident", "INC-7"])
        .run();
    assert!(!shown.stdout.contains('\x1b') && !shown.stdout.contains('\x07'));
    assert!(
        shown.stdout.contains("\\u{1b}]8;;http://evil\\u{7}click"),
        "{}",
        shown.stdout
    );
    // An incident nothing knows about yet is an error (a typo would start
    // a stray record), unless `--create` starts its record, with a warning.
    state
        .irctl()
        .args(["note", "--incident", "INC-42", "phoned the vendor"])
        .status(2)
        .stderr_contains("no incident `INC-42` in `")
        .run();
    state
        .irctl()
        .args([
            "note",
            "--create",
            "--incident",
            "INC-42",
            "phoned the vendor",
        ])
        .stderr_contains("no runs or notes for incident `INC-42` yet")
        .run();
}

#[test]
fn a_webhook_delivered_many_times_at_once_records_one_detection() {
    let state = State::new();
    let payload = state.path().with_file_name("firing.json");
    std::fs::write(&payload, alertmanager("firing", "0001-01-01T00:00:00Z")).unwrap();
    let children: Vec<std::process::Child> = (0..8)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
                .env("IRCTL_STATE_DIR", state.path())
                .env("IRCTL_NOW", NOW)
                .arg("ingest")
                .arg("--incident")
                .arg(&payload)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start irctl ingest")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    for mut child in children {
        let status = wait_until(
            deadline,
            Duration::from_millis(20),
            "an ingest hung",
            || child.try_wait().unwrap(),
        );
        assert!(status.success());
    }
    let files: Vec<_> = std::fs::read_dir(state.path().join("incidents"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1);
    let dir = files.into_iter().next().unwrap().unwrap().path();
    let text = std::fs::read_to_string(dir.join("timeline.jsonl")).unwrap();
    assert_eq!(text.matches(r#""type":"detected""#).count(), 1, "{text}");
}

#[test]
fn ingest_records_detection_and_resolution_and_stats_average_them() {
    let state = State::new();
    state
        .irctl()
        .file("firing.json", alertmanager("firing", "0001-01-01T00:00:00Z"))
        .args(["ingest", "--incident", "firing.json", "--at", "2000-01-01T10:02:00Z"])
        .stdout_contains("recorded detection of incident {}:{alertname=\"ApiDown\"} (API is down) at 2000-01-01T10:02:00Z; nothing was run")
        .run();
    assert!(!state.path().join("runs").exists(), "ingest ran something");
    // Alertmanager repeats a firing group: the first detection keeps its time.
    state
        .irctl()
        .file(
            "firing.json",
            alertmanager("firing", "0001-01-01T00:00:00Z"),
        )
        .args(["ingest", "--incident", "firing.json"])
        .stdout_contains("already recorded as detected at 2000-01-01T10:02:00Z; nothing recorded")
        .run();
    state
        .irctl()
        .file(
            "resolved.json",
            alertmanager("resolved", "2000-01-01T10:30:00Z"),
        )
        .args(["ingest", "--incident", "resolved.json"])
        .stdout_contains("recorded resolution")
        .stdout_contains("at 2000-01-01T10:30:00Z")
        .run();
    // A second incident, resolved by hand: detected at its first run (now).
    let run = state.run(STEPS, 0);
    let other = incident_of(&state, &run);
    state
        .irctl()
        .args(["resolve", "--incident", &other, "--summary", "restarted"])
        .stdout(&format!("resolved incident {other} at {NOW}\n"))
        .run();

    let stats = state
        .irctl()
        .args(["stats", "--format", "json"])
        .run()
        .json();
    let api = stats["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "{}:{alertname=\"ApiDown\"}")
        .expect("the ingested incident is counted");
    assert_eq!(api["time_to_detect"]["seconds"], 120);
    assert_eq!(api["time_to_resolve"]["seconds"], 1800);
    assert_eq!(api["resolved"], true);
    assert_eq!(api["runs"], 0);
    assert_eq!(stats["real_incidents"], 2);
    assert_eq!(stats["runs"]["succeeded"], 1);
    // `--since` keeps incidents first seen at or after it (the clock is fixed at NOW).
    let since = |when: &str| {
        state
            .irctl()
            .args(["stats", "--format", "json", "--since", when])
            .run()
            .json()["incidents"]
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(since("1d"), 2);
    assert_eq!(since("2000-01-01T10:03:00Z"), 1);
    assert_eq!(since("2999-01-01T00:00:00Z"), 0);
    let table = state.irctl().arg("stats").run();
    assert!(table.stdout.contains("2m00s") && table.stdout.contains("30m00s"));
    assert!(
        table
            .stdout
            .contains("incidents: 2 (2 resolved), drills: 0")
    );
}

#[test]
fn secrets_never_appear_in_any_record_output() {
    let state = State::new();
    let secret = "s3cr3t-v4lue-42";
    let out = state
        .irctl()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                secrets: [API_TOKEN]
                steps:
                  - id: leak
                    shell: echo token={{ secrets.API_TOKEN }}; exit 1
                "#,
            ),
        )
        .env("IRCTL_SECRET_API_TOKEN", secret)
        .args(["run", "--label", "app=t"])
        .status(1)
        .run();
    let run = run_id(&out);
    let incident = incident_of(&state, &run);
    // A responder pastes the token into a note and a resolution by mistake.
    let with_secret = |t: Test| t.env("IRCTL_SECRET_API_TOKEN", secret);
    with_secret(state.irctl())
        .args([
            "note",
            "--incident",
            &incident,
            &format!("tried token {secret}"),
        ])
        .run();
    with_secret(state.irctl())
        .args([
            "resolve",
            "--incident",
            &incident,
            "--summary",
            &format!("rotated {secret}"),
        ])
        .run();
    let mut outputs = Vec::new();
    for args in [
        vec!["runs"],
        vec!["runs", "--format", "json"],
        vec!["timeline", &run],
        vec!["timeline", &run, "--format", "json"],
        vec!["timeline", "--incident", &incident, "--format", "markdown"],
        vec!["timeline", "verify", "--incident", &incident],
        vec!["postmortem", "--incident", &incident],
        vec!["postmortem", "--incident", &incident, "--format", "json"],
        vec!["stats", "--format", "json"],
    ] {
        // Read without the secret in the environment: the record itself is clean.
        let out = state.irctl().args(&args).run();
        outputs.push(out.stdout + &out.stderr);
    }
    let record = walk(&state.path());
    for text in outputs.iter().chain(&record) {
        assert!(!text.contains(secret), "secret leaked:\n{text}");
    }
    assert!(outputs[6].contains("tried token ***"));
    assert!(outputs[6].contains("rotated ***"));
}

/// The contents of every file under `dir`.
fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned());
        }
    }
    out
}

#[test]
fn drill_runs_are_marked_everywhere_and_kept_out_of_mttd_and_mttr() {
    let state = State::new();
    // A real drill, as cron runs it.
    let with_drill = format!(
        "{}drill:\n  incident: {{ title: drill of t, labels: {{ app: t }} }}\n",
        playbook(STEPS)
    );
    state
        .irctl()
        .playbook("t.yaml", &with_drill)
        .args(["drill", "t"])
        .run();
    let runs = state.runs();
    assert_eq!(runs.len(), 1);
    let incident_id = runs[0]["incident_id"].as_str().unwrap().to_string();
    state
        .irctl()
        .args(["resolve", "--incident", &incident_id])
        .run();

    assert_eq!(runs[0]["drill"], true);
    let table = state.irctl().arg("runs").run();
    assert!(
        table.stdout.lines().nth(2).unwrap().contains(" yes "),
        "{}",
        table.stdout
    );
    let pm = state
        .irctl()
        .args(["postmortem", "--incident", &incident_id])
        .run();
    assert!(
        pm.stdout.starts_with("# Postmortem: drill of t (drill)\n"),
        "{}",
        pm.stdout
    );
    assert!(pm.stdout.contains(", succeeded (drill)"));
    let stats = state
        .irctl()
        .args(["stats", "--format", "json"])
        .run()
        .json();
    assert_eq!(stats["drill_incidents"], 1);
    assert_eq!(stats["real_incidents"], 0);
    assert_eq!(stats["mttr"], serde_json::Value::Null);
    assert_eq!(stats["drill_runs"]["succeeded"], 1);
    assert_eq!(stats["runs"], serde_json::json!({}));
}

#[test]
fn a_bad_irctl_now_stops_the_commands_that_read_the_clock_but_never_a_run() {
    let state = State::new();
    for args in [&["stats"][..], &["drill", "--all"]] {
        state
            .irctl()
            .env("IRCTL_NOW", "yesterday")
            .args(args)
            .status(2)
            .stderr_contains(
                "invalid `IRCTL_NOW` `yesterday`: expected an RFC 3339 time such as `2026-03-02T10:30:00Z`",
            )
            .run();
    }
    // The engine's timestamps use the real clock, so a stray value must not block a run.
    let out = state
        .irctl()
        .env("IRCTL_NOW", "yesterday")
        .playbook("t.yaml", &playbook(STEPS))
        .args(["run", "--label", "app=t", "--label", "service=api"])
        .run();
    run_id(&out);
}
