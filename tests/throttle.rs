//! Per-playbook limits across incidents through the binary: `once_within`
//! and `max_runs` hold a playbook back for every incident of a flapping
//! fleet (recorded as `run_throttled`, exit 0), `--again` overrides them on
//! the record, simultaneous `irctl run`s cannot slip past them,
//! `concurrency` makes extra runs wait for a slot, and `irctl runs` shows
//! what was held back and until when.

mod common;
#[path = "support/state.rs"]
mod state;
#[path = "support/wait.rs"]
mod wait;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Test, unindent};
use state::State;

/// A playbook `t` for the `DiskFull` alert with `limits` and `steps`.
fn playbook(limits: &str, steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['alertname=\"DiskFull\"']\n{}{}",
        unindent(limits),
        unindent(steps)
    )
}

const MARK: &str = r#"
steps:
  - id: act
    shell: echo {{ incident.labels.instance }} >> "$MARKS/ran"
"#;

/// An Alertmanager payload of `DiskFull` on `host`: one incident per host.
fn payload(host: &str) -> String {
    serde_json::json!({
        "version": "4", "status": "firing", "receiver": "irctl",
        "groupKey": format!("{{}}:{{alertname=\"DiskFull\",instance=\"{host}\"}}"),
        "groupLabels": { "alertname": "DiskFull", "instance": host },
        "commonLabels": { "alertname": "DiskFull", "instance": host, "severity": "warning" },
        "commonAnnotations": {}, "externalURL": "http://am",
        "alerts": [{
            "status": "firing",
            "labels": { "alertname": "DiskFull", "instance": host, "severity": "warning" },
            "annotations": {}, "startsAt": "2000-01-01T10:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "fingerprint": format!("fp-{host}")
        }]
    })
    .to_string()
}

fn marks(state: &State) -> PathBuf {
    let dir = state.path().with_file_name("marks");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ran(marks: &Path) -> String {
    std::fs::read_to_string(marks.join("ran")).unwrap_or_default()
}

/// `irctl run` of `host`'s payload.
fn run(state: &State, marks: &Path, yaml: &str, host: &str) -> Test {
    state
        .irctl()
        .playbook("t.yaml", yaml)
        .file("payload.json", payload(host))
        .env("MARKS", &marks.display().to_string())
        .args(["run", "--incident", "payload.json"])
}

/// Every incident log event of `kind` in `state`.
fn logged(state: &Path, kind: &str) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(state.join("incidents")) else {
        return out;
    };
    for dir in dirs {
        let text = std::fs::read_to_string(dir.unwrap().path().join("timeline.jsonl")).unwrap();
        for line in text.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            if e["type"] == kind {
                out.push(e);
            }
        }
    }
    out
}

fn run_dirs(state: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state.join("runs"))
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

fn timeline(run: &Path) -> String {
    std::fs::read_to_string(run.join("timeline.jsonl")).unwrap()
}

fn time(v: &serde_json::Value) -> chrono::DateTime<chrono::Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// Sleeps until `t` has passed.
fn sleep_until(t: chrono::DateTime<chrono::Utc>) {
    let left = (t - chrono::Utc::now()).to_std().unwrap_or_default();
    std::thread::sleep(left + Duration::from_millis(50));
}

#[test]
fn once_within_holds_the_playbook_for_every_incident_until_the_window_passes() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = playbook("once_within: 3s\n", MARK);
    run(&state, &marks, &yaml, "db-1").status(0).run();
    run(&state, &marks, &yaml, "db-2")
        .status(0)
        .stderr_contains(
            "playbook t is throttled by `once_within: 3s`; recorded as `run_throttled`, not run; the next run is allowed from ",
        )
        .stderr_contains("(`--again` runs it anyway)")
        .run();
    assert_eq!(ran(&marks), "db-1\n");
    let throttled = logged(&state.path(), "run_throttled");
    assert_eq!(throttled.len(), 1, "{throttled:?}");
    let t = &throttled[0];
    assert_eq!(t["playbook"], "t");
    assert_eq!(t["rule"], "once_within: 3s");
    assert_eq!(t["by"], "alice");
    assert_eq!(t["source"], "alertmanager");
    let next = time(&t["next_run_at"]);
    let wait = next - time(&t["at"]);
    assert!(
        wait > chrono::Duration::zero() && wait <= chrono::Duration::seconds(3),
        "{t}"
    );
    let id = t["incident_id"].as_str().unwrap().to_string();
    assert!(id.contains("db-2"), "{id}");
    // The postmortem of the held-back incident says so.
    state
        .irctl()
        .args(["postmortem", "--incident", &id])
        .stdout_contains("playbook t throttled by `once_within: 3s`, not run")
        .run();
    // So does `irctl runs`, beside the run, with when it may run again.
    let next_text = next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    state
        .irctl()
        .args(["runs"])
        .stdout_contains(&format!("held: once_within: 3s until {next_text}"))
        .stdout_contains("succeeded")
        .run();
    let out = state
        .irctl()
        .args(["runs", "--format", "json", "--playbook", "t"])
        .run();
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let held = &rows[1];
    assert_eq!(held["status"], "held", "{held}");
    assert!(held["run_id"].is_null());
    assert_eq!(held["incident_id"], id.as_str());
    assert_eq!(held["held"]["reason"], "once_within");
    assert_eq!(held["held"]["rule"], "once_within: 3s");
    assert_eq!(held["held"]["by"], "alice");
    assert_eq!(time(&held["held"]["next_run_at"]), next);
    // Filters hold for held attempts too.
    state
        .irctl()
        .args(["runs", "--playbook", "other"])
        .stderr_contains("no runs match these filters")
        .run();
    // Past the window it runs again.
    sleep_until(next);
    run(&state, &marks, &yaml, "db-3").status(0).run();
    assert_eq!(ran(&marks), "db-1\ndb-3\n");
}

#[test]
fn again_overrides_a_throttle_and_the_run_records_it() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = playbook("once_within: 1h\n", MARK);
    run(&state, &marks, &yaml, "db-1").run();
    let out = run(&state, &marks, &yaml, "db-2")
        .arg("--again")
        .status(0)
        .run();
    assert_eq!(ran(&marks), "db-1\ndb-2\n");
    let said =
        "throttle `once_within: 1h` overridden with `--again` (the next run was allowed from ";
    assert!(out.stderr.contains(said), "{}", out.stderr);
    let recorded = run_dirs(&state.path())
        .iter()
        .filter(|d| timeline(d).contains(said))
        .count();
    assert_eq!(recorded, 1, "the overriding run records the override");
    // The override counted: the next delivery is held back again.
    run(&state, &marks, &yaml, "db-3")
        .status(0)
        .stderr_contains("throttled by `once_within: 1h`")
        .run();
    assert_eq!(ran(&marks), "db-1\ndb-2\n");
}

#[test]
fn max_runs_counts_runs_of_the_playbook_across_incidents_in_its_window() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = playbook("max_runs: 2 per 6s\n", MARK);
    run(&state, &marks, &yaml, "a").run();
    std::thread::sleep(Duration::from_secs(2));
    run(&state, &marks, &yaml, "b").run();
    run(&state, &marks, &yaml, "c")
        .status(0)
        .stderr_contains("throttled by `max_runs: 2 per 6s`")
        .run();
    let first = logged(&state.path(), "run_throttled");
    assert_eq!(first.len(), 1);
    // The first run leaves the window first; the second is still in it.
    sleep_until(time(&first[0]["next_run_at"]));
    run(&state, &marks, &yaml, "d").run();
    run(&state, &marks, &yaml, "e")
        .stderr_contains("throttled by `max_runs: 2 per 6s`")
        .run();
    assert_eq!(ran(&marks), "a\nb\nd\n");
    let all = logged(&state.path(), "run_throttled");
    assert_eq!(all.len(), 2);
    // A repeat of an incident that already ran is a repeat, not a throttle.
    run(&state, &marks, &yaml, "a")
        .stderr_contains("recorded as `alert_repeated`")
        .run();
    assert_eq!(logged(&state.path(), "run_throttled").len(), 2);
    // `irctl runs` shows the throttled attempts; repeats (re-sends of what
    // ran) only with `--all`.
    let out = state.irctl().args(["runs"]).run();
    assert_eq!(
        out.stdout
            .matches("held: max_runs: 2 per 6s until ")
            .count(),
        2,
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("held: repeat"), "{}", out.stdout);
    let out = state.irctl().args(["runs", "--all"]).run();
    assert_eq!(
        out.stdout.matches("held: repeat of ").count(),
        1,
        "{}",
        out.stdout
    );
}

#[test]
fn nonsense_limits_are_validation_errors_that_say_where() {
    for (limits, line, col, says) in [
        ("once_within: 0s\n", 6, 14, "above zero"),
        ("once_within: soon\n", 6, 14, "invalid duration"),
        ("max_runs: 3 in 1h\n", 6, 11, "expected `per`"),
        ("max_runs: 0 per 1h\n", 6, 11, "must be 1 to"),
        ("max_runs: 3 per 0s\n", 6, 11, "above zero"),
        ("max_runs: 3\n", 6, 11, "`N per DURATION`"),
        ("concurrency: 0\n", 6, 14, "`concurrency` must be 1 to"),
    ] {
        Test::new()
            .playbook("t.yaml", &playbook(limits, MARK))
            .args(["validate"])
            .status(1)
            .stderr_contains(&format!("--> playbooks/t.yaml:{line}:{col}"))
            .stderr_contains(says)
            .run();
    }
    Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                "once_within: 30m\nmax_runs: 3 per 1h\nconcurrency: 2\n",
                MARK,
            ),
        )
        .args(["validate"])
        .status(0)
        .run();
}

/// `n` simultaneous `irctl run`s, one per host, of `yaml` in `state`.
fn at_once(state: &State, marks: &Path, yaml: &str, hosts: &[&str]) -> Vec<Child> {
    let dir = state.path().with_file_name("work");
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(dir.join("playbooks/t.yaml"), yaml).unwrap();
    hosts
        .iter()
        .map(|host| {
            let file = dir.join(format!("{host}.json"));
            std::fs::write(&file, payload(host)).unwrap();
            Command::new(env!("CARGO_BIN_EXE_irctl"))
                .current_dir(&dir)
                .env("IRCTL_STATE_DIR", state.path())
                .env("MARKS", marks)
                .env("XDG_CACHE_HOME", dir.join(".cache"))
                .args(["run", "--incident"])
                .arg(&file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start irctl run")
        })
        .collect()
}

fn wait_all(children: Vec<Child>) {
    let deadline = Instant::now() + Duration::from_secs(120);
    for mut child in children {
        let status = wait::wait_until(deadline, Duration::from_millis(20), "a run hung", || {
            child.try_wait().unwrap()
        });
        assert!(status.success(), "{status}");
    }
}

#[test]
fn simultaneous_deliveries_for_many_incidents_cannot_slip_past_max_runs() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = playbook(
        "max_runs: 2 per 1h\n",
        r#"
        steps:
          - id: act
            shell: echo ran >> "$MARKS/ran"
        "#,
    );
    let hosts = ["h1", "h2", "h3", "h4", "h5", "h6"];
    wait_all(at_once(&state, &marks, &yaml, &hosts));
    assert_eq!(ran(&marks), "ran\nran\n");
    assert_eq!(run_dirs(&state.path()).len(), 2);
    assert_eq!(logged(&state.path(), "run_throttled").len(), 4);
}

#[test]
fn concurrency_makes_extra_runs_wait_for_a_slot_and_says_how_long() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = playbook(
        "concurrency: 1\n",
        r#"
        steps:
          - id: act
            shell: |
              echo "start $(date +%s%N)" >> "$MARKS/ran"
              sleep 0.6
              echo "end $(date +%s%N)" >> "$MARKS/ran"
        "#,
    );
    wait_all(at_once(&state, &marks, &yaml, &["w1", "w2", "w3"]));
    // Every run ran, one at a time: starts and ends alternate.
    let lines: Vec<String> = ran(&marks).lines().map(str::to_string).collect();
    assert_eq!(lines.len(), 6, "{lines:?}");
    for pair in lines.chunks(2) {
        assert!(
            pair[0].starts_with("start ") && pair[1].starts_with("end "),
            "{lines:?}"
        );
    }
    let waited = run_dirs(&state.path())
        .iter()
        .filter(|d| timeline(d).contains("for a free slot (`concurrency: 1`)"))
        .count();
    assert!(waited >= 2, "{waited} runs recorded a wait");
}

#[test]
fn a_run_told_not_to_wait_defers_without_a_trace_and_gives_up_like_a_waiting_one() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = playbook(
        "concurrency: 1\n",
        r#"
        steps:
          - id: act
            shell: |
              echo "start {{ incident.labels.instance }}" >> "$MARKS/ran"
              sleep 3
        "#,
    );
    let holder = at_once(&state, &marks, &yaml, &["w1"]);
    wait::wait_until(
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(20),
        "the first run never started",
        || ran(&marks).contains("start w1").then_some(()),
    );
    // No free slot: nothing runs, nothing is counted or recorded, exit 75,
    // and the outcome says which playbook waits.
    let outcome = state.path().with_file_name("outcome.jsonl");
    let outcome_arg = outcome.display().to_string();
    run(&state, &marks, &yaml, "w2")
        .args(["--defer-slots", "--outcome-file", &outcome_arg])
        .status(75)
        .stderr_contains("playbook t waits for a free slot (`concurrency: 1`); not run yet")
        .run();
    let said: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&outcome).unwrap().trim()).unwrap();
    assert_eq!(said["decision"], "deferred");
    assert_eq!(said["reason"], "concurrency");
    assert!(logged(&state.path(), "run_throttled").is_empty());
    assert_eq!(run_dirs(&state.path()).len(), 1);
    // Waiting since longer than the playbook may wait: given up, as a
    // waiting run gives up — recorded as `run_throttled`, exit 1.
    run(&state, &marks, &yaml, "w3")
        .args(["--defer-slots", "--waiting-since", "0"])
        .status(1)
        .stderr_contains("throttled by `concurrency: 1`; recorded as `run_throttled`, not run; no slot came free in time")
        .run();
    assert_eq!(logged(&state.path(), "run_throttled").len(), 1);
    wait_all(holder);
    // A slot is free, but an older delivery waits for it: that one comes first.
    run(&state, &marks, &yaml, "w4")
        .args(["--defer-slots", "--behind", "t"])
        .status(75)
        .run();
    // Once it may, it takes the slot and runs.
    run(&state, &marks, &yaml, "w4")
        .args(["--defer-slots", "--only-playbook", "t"])
        .status(0)
        .run();
    assert_eq!(ran(&marks), "start w1\nstart w4\n");
}
