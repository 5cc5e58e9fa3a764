//! The incident lifecycle through the binary: resolved and acknowledged
//! payloads that start nothing (unless `on_resolved` or `--force`),
//! repeats that do not run twice (even delivered at the same moment),
//! episodes, and the short incident id `irctl run` prints.

mod common;
#[path = "support/state.rs"]
mod state;
#[path = "support/wait.rs"]
mod wait;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Output, Test, unindent};
use serde_json::json;
use state::{INCIDENT, State, alertmanager, alertmanager_from};

const SHELL_MARKS: &str = r#"
steps:
  - id: act
    shell: echo {{ incident.status }} >> "$MARKS/ran"
"#;

/// A playbook named `t` matching the `ApiDown` payloads of `state.rs`.
fn api_playbook(body: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['alertname=\"ApiDown\"']\n{}",
        unindent(body)
    )
}

/// `irctl run` of the payload `json` in `state`, marks going to `marks`.
fn run_payload(state: &State, marks: &Path, yaml: &str, json: &str) -> Test {
    state
        .irctl()
        .playbook("t.yaml", yaml)
        .file("payload.json", json)
        .env("MARKS", &marks.display().to_string())
        .args(["run", "--incident", "payload.json"])
}

fn marks(state: &State) -> PathBuf {
    let dir = state.path().with_file_name("marks");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ran(marks: &Path) -> String {
    std::fs::read_to_string(marks.join("ran")).unwrap_or_default()
}

fn run_count(state: &State) -> usize {
    std::fs::read_dir(state.path().join("runs"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Every incident log's events in `state`, as (incident id, type) pairs.
fn logged(state: &State) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(state.path().join("incidents")) else {
        return out;
    };
    for dir in dirs {
        let text = std::fs::read_to_string(dir.unwrap().path().join("timeline.jsonl")).unwrap();
        for line in text.lines() {
            let e: serde_json::Value = serde_json::from_str(line).unwrap();
            out.push((
                e["incident_id"].as_str().unwrap().to_string(),
                e["type"].as_str().unwrap().to_string(),
            ));
        }
    }
    out.sort();
    out
}

fn example(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/incidents")
            .join(name),
    )
    .unwrap()
}

/// Resolved and acknowledged payloads of every sender irctl reads, each
/// with the event type it must record.
fn resolutions() -> Vec<(&'static str, String, &'static str, &'static str)> {
    let grafana = example("grafana-firing.json")
        .replace("\"firing\"", "\"resolved\"")
        .replace("0001-01-01T00:00:00Z", "2021-10-12T10:30:00Z");
    let pd = example("pagerduty-v3-triggered.json");
    let cloudevent = json!({
        "specversion": "1.0", "id": "ce-1", "source": "monitor", "type": "alert",
        "data": { "title": "API is down", "status": "resolved", "labels": { "alertname": "ApiDown" } }
    });
    vec![
        (
            "alertmanager",
            alertmanager("resolved", "2000-01-01T10:30:00Z"),
            "resolved",
            "payload.json",
        ),
        ("grafana", grafana, "resolved", "payload.json"),
        (
            "pagerduty resolved",
            pd.replace("incident.triggered", "incident.resolved"),
            "resolved",
            "payload.json",
        ),
        (
            "pagerduty acknowledged",
            pd.replace("incident.triggered", "incident.acknowledged")
                .replace("\"triggered\"", "\"acknowledged\""),
            "acknowledged",
            "payload.json",
        ),
        (
            "pagerduty event acknowledge",
            json!({ "event_action": "acknowledge", "dedup_key": "disk-1" }).to_string(),
            "acknowledged",
            "payload.json",
        ),
        (
            "cloudevents",
            cloudevent.to_string(),
            "resolved",
            "payload.json",
        ),
        (
            "irctl",
            "id: INC-9\ntitle: API is down\nstatus: resolved\n".to_string(),
            "resolved",
            "payload.yaml",
        ),
    ]
}

#[test]
fn a_resolved_or_acknowledged_payload_is_recorded_and_runs_nothing() {
    for (sender, payload, kind, file) in resolutions() {
        let state = State::new();
        let marks = marks(&state);
        // Even a playbook named on the command line does not run.
        let out = state
            .irctl()
            .playbook("t.yaml", &api_playbook(SHELL_MARKS))
            .file(file, &payload)
            .env("MARKS", &marks.display().to_string())
            .args(["run", "t", "--incident", file])
            .status(0)
            .stderr_contains("; recorded, no playbook run")
            .run();
        let said = if kind == "resolved" {
            " resolved at "
        } else {
            " acknowledged at "
        };
        assert!(out.stderr.contains(said), "{sender}:\n{}", out.stderr);
        assert_eq!(ran(&marks), "", "{sender} ran the playbook");
        assert_eq!(run_count(&state), 0, "{sender}");
        let kinds: Vec<String> = logged(&state).into_iter().map(|(_, k)| k).collect();
        assert_eq!(kinds, [kind], "{sender}");
        // The same payload again is recorded once.
        state
            .irctl()
            .playbook("t.yaml", &api_playbook(SHELL_MARKS))
            .file(file, &payload)
            .args(["run", "--incident", file])
            .status(0)
            .stderr_contains("already recorded at")
            .run();
        assert_eq!(logged(&state).len(), 1, "{sender}");
    }
}

#[test]
fn on_resolved_steps_run_for_a_resolution_with_it_in_context() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = api_playbook(
        r#"
        steps:
          - id: act
            shell: echo firing-steps >> "$MARKS/ran"
        on_resolved:
          - id: close
            shell: echo {{ incident.status }} {{ incident.ended_at }} >> "$MARKS/ran"
          - id: tell
            needs: [close]
            notify:
              console: { text: "closed {{ steps.close.stdout | trim }}" }
        "#,
    );
    let resolved = alertmanager("resolved", "2000-01-01T10:30:00Z");
    run_payload(&state, &marks, &yaml, &resolved)
        .status(0)
        .stderr_contains("; recorded, running its playbook's `on_resolved` steps")
        .run();
    assert_eq!(ran(&marks), "resolved 2000-01-01T10:30:00.000Z\n");
    // A repeated resolution does not run them twice.
    run_payload(&state, &marks, &yaml, &resolved)
        .status(0)
        .stderr_contains("already ran for this episode")
        .run();
    assert_eq!(run_count(&state), 1);
}

#[test]
fn resuming_a_failed_resolution_run_goes_on_with_its_on_resolved_steps() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = api_playbook(
        r#"
        steps:
          - id: act
            shell: echo firing-steps >> "$MARKS/ran"
        on_resolved:
          - id: close
            shell: test -f "$MARKS/ok" && echo closed >> "$MARKS/ran"
        "#,
    );
    let resolved = alertmanager("resolved", "2000-01-01T10:30:00Z");
    let out = run_payload(&state, &marks, &yaml, &resolved)
        .status(1)
        .run();
    let run = run_id(&out);
    assert_eq!(ran(&marks), "");
    std::fs::write(marks.join("ok"), "").unwrap();
    state
        .irctl()
        .playbook("t.yaml", &yaml)
        .env("MARKS", &marks.display().to_string())
        .args(["resume", &run, "--yes"])
        .status(0)
        .run();
    // The resolution's steps, not the remediation.
    assert_eq!(ran(&marks), "closed\n");
}

#[test]
fn force_runs_the_steps_for_a_resolution_and_the_run_says_so() {
    let state = State::new();
    let marks = marks(&state);
    let out = run_payload(
        &state,
        &marks,
        &api_playbook(SHELL_MARKS),
        &alertmanager("resolved", "2000-01-01T10:30:00Z"),
    )
    .arg("--force")
    .status(0)
    .stderr_contains("running the playbook anyway (`--force`)")
    .run();
    assert_eq!(ran(&marks), "resolved\n");
    let run = run_id(&out);
    let text = std::fs::read_to_string(state.path().join("runs").join(&run).join("timeline.jsonl"))
        .unwrap();
    assert!(
        text.contains(r#""type":"warning","message":"forced (`--force`)"#),
        "{text}"
    );
}

#[test]
fn on_resolved_is_validated_as_steps_are_and_in_the_schema() {
    Test::new()
        .playbook(
            "t.yaml",
            &api_playbook(
                r#"
                steps:
                  - id: act
                    shell: echo hi
                on_resolved:
                  - id: close
                    needs: [act]
                    shell: echo {{ steps.act.stdout }}
                "#,
            ),
        )
        .args(["validate"])
        .status(1)
        .stderr_contains("step `close` needs `act`, which does not exist")
        .run();
    Test::new()
        .args(["schema"])
        .stdout_contains("\"on_resolved\"")
        .run();
}

/// The run id `irctl run` prints first on stdout.
fn run_id(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no run id in:\n{}", out.stdout))
        .to_string()
}

/// The short incident id `irctl run` prints.
fn short_id(out: &Output) -> String {
    out.stdout
        .lines()
        .find_map(|l| {
            l.split_once("(short id ")
                .map(|(_, s)| s.trim_end_matches(')'))
        })
        .unwrap_or_else(|| panic!("no short id in:\n{}", out.stdout))
        .to_string()
}

#[test]
fn a_repeated_payload_is_recorded_and_not_run_again_unless_again() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = api_playbook(SHELL_MARKS);
    let firing = alertmanager("firing", "0001-01-01T00:00:00Z");
    let first = run_payload(&state, &marks, &yaml, &firing).run();
    let run = run_id(&first);
    run_payload(&state, &marks, &yaml, &firing)
        .status(0)
        .stderr_contains(&format!(
            "playbook t already ran for this episode (run {run}, succeeded); recorded as `alert_repeated`, not run again (`--again` runs it anyway)"
        ))
        .run();
    assert_eq!(ran(&marks), "firing\n");
    assert_eq!(
        logged(&state),
        [(INCIDENT.to_string(), "alert_repeated".to_string())]
    );
    // The repeat shows with the earlier run.
    state
        .irctl()
        .args(["timeline", &run])
        .stdout_contains("alert_repeated")
        .stdout_contains(&format!("playbook t already ran ({run}), not run again"))
        .run();
    run_payload(&state, &marks, &yaml, &firing)
        .arg("--again")
        .status(0)
        .run();
    assert_eq!(ran(&marks), "firing\nfiring\n");
    // A person describing an incident by hand means each run.
    for _ in 0..2 {
        state
            .irctl()
            .playbook("t.yaml", &yaml)
            .env("MARKS", &marks.display().to_string())
            .args(["run", "--label", "alertname=ApiDown"])
            .run();
    }
    assert_eq!(run_count(&state), 4);
}

#[test]
fn the_same_payload_delivered_many_times_at_once_runs_once() {
    let state = State::new();
    let dir = state.path().with_file_name("work");
    std::fs::create_dir_all(dir.join("playbooks")).unwrap();
    std::fs::write(
        dir.join("playbooks/t.yaml"),
        api_playbook(
            r#"
            steps:
              - id: act
                shell: echo ran >> "$MARKS/ran"; sleep 1
            "#,
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("payload.json"),
        alertmanager("firing", "0001-01-01T00:00:00Z"),
    )
    .unwrap();
    let marks = marks(&state);
    let children: Vec<std::process::Child> = (0..6)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
                .current_dir(&dir)
                .env("IRCTL_STATE_DIR", state.path())
                .env("MARKS", &marks)
                .env("XDG_CACHE_HOME", dir.join(".cache"))
                .args(["run", "--incident", "payload.json"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("start irctl run")
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    for mut child in children {
        let status = wait::wait_until(deadline, Duration::from_millis(20), "a run hung", || {
            child.try_wait().unwrap()
        });
        assert!(status.success(), "{status}");
    }
    assert_eq!(ran(&marks), "ran\n");
    assert_eq!(run_count(&state), 1);
    let repeats = logged(&state)
        .iter()
        .filter(|(_, k)| k == "alert_repeated")
        .count();
    assert_eq!(repeats, 5);
}

#[test]
fn a_firing_after_a_resolution_is_a_new_episode() {
    let state = State::new();
    let marks = marks(&state);
    let yaml = api_playbook(SHELL_MARKS);
    let firing = alertmanager("firing", "0001-01-01T00:00:00Z");
    let first = run_payload(&state, &marks, &yaml, &firing).run();
    assert!(
        first
            .stdout
            .contains(&format!("incident: {INCIDENT} (short id "))
    );
    state
        .irctl()
        .file(
            "resolved.json",
            alertmanager("resolved", "2000-01-01T10:30:00Z"),
        )
        .args(["ingest", "--incident", "resolved.json"])
        .run();
    // A late copy of the first firing (a delayed or re-sent notification:
    // its alert started before the resolution) runs nothing, opens nothing.
    let late = run_payload(&state, &marks, &yaml, &firing).run();
    assert_eq!(late.status, 0, "{}", late.stderr);
    assert!(
        late.stderr.contains(&format!(
            "incident `{INCIDENT}` resolved at 2000-01-01T10:30:00.000Z, and this firing payload's newest alert started at 2000-01-01T10:00:00.000Z, before that: a late copy of the resolved incident, not run"
        )),
        "{}",
        late.stderr
    );
    assert_eq!(ran(&marks), "firing\n");
    assert_eq!(run_count(&state), 1);
    // `irctl ingest` of it records nothing either: the resolution stands.
    state
        .irctl()
        .file("late.json", &firing)
        .args(["ingest", "--incident", "late.json"])
        .stdout_contains(&format!(
            "incident {INCIDENT} already recorded as resolved at "
        ))
        .run();
    // Next week, the same group fires again: a new incident, which runs.
    let firing = alertmanager_from("2000-01-08T09:00:00Z", "firing", "0001-01-01T00:00:00Z");
    let second = run_payload(&state, &marks, &yaml, &firing).run();
    let episode2 = format!("{INCIDENT}#2");
    assert!(
        second
            .stdout
            .contains(&format!("incident: {episode2} (short id "))
    );
    assert_eq!(ran(&marks), "firing\nfiring\n");
    let runs_of = |id: &str| {
        state
            .irctl()
            .args(["runs", "--format", "json", "--incident", id])
            .run()
            .json()
            .as_array()
            .unwrap()
            .len()
    };
    assert_eq!(runs_of(INCIDENT), 1);
    assert_eq!(runs_of(&episode2), 1);
    let pm = |id: &str| {
        state
            .irctl()
            .args(["postmortem", "--incident", id, "--format", "json"])
            .run()
            .json()
    };
    assert_eq!(pm(INCIDENT)["incident"]["status"], "resolved");
    assert_eq!(pm(&episode2)["incident"]["status"], "ongoing");
    assert_eq!(pm(&episode2)["runs"].as_array().unwrap().len(), 1);
    let first_timeline = state
        .irctl()
        .args(["timeline", "--incident", INCIDENT, "--format", "json"])
        .run()
        .json();
    assert_eq!(
        first_timeline
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "run_started")
            .count(),
        1
    );
    // Resolving the second episode, and a third firing.
    state
        .irctl()
        .file(
            "resolved.json",
            alertmanager("resolved", "2000-01-01T10:30:00Z"),
        )
        .args(["ingest", "--incident", "resolved.json"])
        .stdout_contains(&format!("recorded resolution of incident {episode2} "))
        .run();
    let firing = alertmanager_from("2000-01-15T09:00:00Z", "firing", "0001-01-01T00:00:00Z");
    let third = run_payload(&state, &marks, &yaml, &firing).run();
    assert!(
        third
            .stdout
            .contains(&format!("incident: {INCIDENT}#3 (short id "))
    );
    let stats = state
        .irctl()
        .args(["stats", "--format", "json"])
        .run()
        .json();
    let incidents = stats["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 3, "{stats:#}");
    assert_eq!(stats["resolved"], 2);
    // No duration is ever negative, whatever order the times came in.
    let text = stats.to_string();
    assert!(!text.contains("\"seconds\":-"), "{stats:#}");
    for id in [INCIDENT.to_string(), episode2] {
        assert!(!pm(&id).to_string().contains("\"seconds\":-"), "{id}");
    }
}

#[test]
fn the_short_incident_id_names_the_incident_everywhere() {
    let state = State::new();
    let marks = marks(&state);
    let out = run_payload(
        &state,
        &marks,
        &api_playbook(SHELL_MARKS),
        &alertmanager("firing", "0001-01-01T00:00:00Z"),
    )
    .run();
    let short = short_id(&out);
    assert_eq!(short.len(), 8, "{short}");
    state
        .irctl()
        .args(["note", "--incident", &short, "looked at it"])
        .stdout_contains(&format!("noted on incident {INCIDENT} at "))
        .run();
    state
        .irctl()
        .args(["timeline", "--incident", &short])
        .stdout_contains("looked at it")
        .stdout_contains("run_started")
        .run();
    let pm = state
        .irctl()
        .args(["postmortem", "--incident", &short[..5], "--format", "json"])
        .run()
        .json();
    assert_eq!(pm["incident"]["id"], INCIDENT);
    state
        .irctl()
        .args(["resolve", "--incident", &short])
        .stdout_contains(&format!("resolved incident {INCIDENT} at "))
        .run();
}

#[test]
fn a_reopened_pagerduty_incident_runs_again_but_a_late_trigger_does_not() {
    let state = State::new();
    let marks = marks(&state);
    let yaml =
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['event_type=~\"incident.*\"']\n"
            .to_string()
            + &unindent(SHELL_MARKS);
    let triggered = example("pagerduty-v3-triggered.json");
    let at = |payload: &str, when: &str| payload.replace("2020-04-09T15:16:27.984Z", when);
    run_payload(&state, &marks, &yaml, &triggered).run();
    let resolved = at(
        &triggered.replace("incident.triggered", "incident.resolved"),
        "2020-04-09T15:30:00Z",
    );
    run_payload(&state, &marks, &yaml, &resolved).run();
    assert_eq!(ran(&marks), "firing\n");
    // The trigger's webhook delivered again after the resolution: late.
    let late = run_payload(&state, &marks, &yaml, &triggered).run();
    assert!(
        late.stderr.contains("a late copy of the resolved incident"),
        "{}",
        late.stderr
    );
    assert_eq!(ran(&marks), "firing\n");
    // Reopened in PagerDuty: the same incident (created before the
    // resolution) fires again, a new episode, and the playbook runs.
    let reopened = at(
        &triggered.replace("incident.triggered", "incident.reopened"),
        "2020-04-09T16:00:00Z",
    );
    let again = run_payload(&state, &marks, &yaml, &reopened).run();
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert!(again.stdout.contains("#2 (short id "), "{}", again.stdout);
    assert_eq!(ran(&marks), "firing\nfiring\n");
}
