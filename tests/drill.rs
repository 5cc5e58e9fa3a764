//! `irctl drill` end to end: drills against real HTTP receivers on
//! 127.0.0.1, a hung drill cancelled at `max_duration`, `--due` with a fixed
//! clock over missed and overlapping schedules, and the JUnit/JSON reports.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Test, unindent};
use receiver::Receiver;
use wait::wait_until;

/// A playbook `name` matching `app=<name>`, with `steps` and `drill` sections (YAML, indented).
fn playbook(name: &str, rest: &str) -> String {
    format!(
        "version: 1\nname: {name}\ntitle: Test {name}\nmatch:\n  labels: ['app=\"{name}\"']\n{}",
        unindent(rest)
    )
}

/// Run directories under `state`.
fn runs(state: &Path) -> Vec<std::path::PathBuf> {
    let mut runs: Vec<_> = std::fs::read_dir(state.join("runs"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    runs.sort();
    runs
}

/// The events of one run.
fn events(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("timeline.jsonl"))
        .expect("timeline")
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect()
}

#[test]
fn simulated_steps_never_fire_and_notifications_go_tagged_to_the_drill_override() {
    let remediation = Receiver::start(vec![(200, vec![], "ok")]);
    let real_slack = Receiver::start(vec![(200, vec![], "ok")]);
    let drill_slack = Receiver::start(vec![(200, vec![], "ok")]);
    let pagerduty = Receiver::start(vec![(
        202,
        vec![("content-type", "application/json")],
        r#"{"status":"success","message":"Event processed","dedup_key":"k1"}"#,
    )]);
    let yaml = playbook(
        "t",
        &format!(
            r#"
            steps:
              - id: diag
                shell: echo diagnosing
              - id: restart
                needs: [diag]
                confirm: "Restart {{{{ incident.labels.app }}}}?"
                http: {{ method: POST, url: "{remediate}" }}
                simulate_in_drill: true
              - id: wipe
                needs: [diag]
                shell: touch wiped
                simulate_in_drill: true
              - id: page
                needs: [restart, wipe]
                notify:
                  slack: {{ webhook: "{real}", text: "restarted {{{{ incident.labels.app }}}}" }}
              - id: page_pd
                needs: [restart]
                notify:
                  pagerduty: {{ routing_key: "{{{{ secrets.PD_KEY }}}}", endpoint: "{pd}", summary: "t is down" }}
            secrets: [PD_KEY, PD_DRILL_KEY]
            drill:
              incident: {{ title: drill, labels: {{ app: t }} }}
              max_duration: 30s
              notify:
                slack: "{drill}"
                pagerduty: "{{{{ secrets.PD_DRILL_KEY }}}}"
            "#,
            remediate = remediation.url("/restart"),
            real = real_slack.url("/real"),
            drill = drill_slack.url("/drill"),
            pd = pagerduty.url("/v2/enqueue"),
        ),
    );
    let out = Test::new()
        .playbook("t.yaml", &yaml)
        .env("IRCTL_STATE_DIR", "state")
        .env("PD_KEY", "real-oncall-key")
        .env("PD_DRILL_KEY", "drill-test-key")
        .args(["drill", "t"])
        .stdout_contains("1 drill: 1 passed, 0 failed")
        .run();
    let dir = out.tempdir.path();
    assert!(
        remediation.requests().is_empty(),
        "a simulated request fired"
    );
    assert!(!dir.join("wiped").exists(), "a simulated command ran");
    assert!(
        real_slack.requests().is_empty(),
        "the real channel was paged"
    );
    let sent = drill_slack.requests();
    assert_eq!(sent.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(body["text"], "[DRILL] restarted t");
    let paged = pagerduty.requests();
    assert_eq!(paged.len(), 1);
    let event: serde_json::Value = serde_json::from_str(&paged[0].body).unwrap();
    assert_eq!(event["routing_key"], "drill-test-key");
    assert_eq!(event["payload"]["summary"], "[DRILL] t is down");

    let run = &runs(&dir.join("state"))[0];
    let ev = events(run);
    assert_eq!(ev[0]["type"], "run_started");
    assert_eq!(ev[0]["drill"], true);
    let simulated = |step: &str| {
        ev.iter()
            .find(|e| e["type"] == "step_simulated" && e["step"] == step)
            .unwrap_or_else(|| panic!("{step} was not simulated"))
    };
    assert_eq!(
        simulated("restart")["action"]["url"],
        remediation.url("/restart")
    );
    assert_eq!(simulated("wipe")["action"]["shell"], "touch wiped");
    assert!(
        !ev.iter().any(|e| e["type"] == "step_started"
            && (e["step"] == "restart" || e["step"] == "wipe")),
        "a simulated step started"
    );
    let text = std::fs::read_to_string(run.join("timeline.jsonl")).unwrap();
    assert!(!text.contains("drill-test-key") && !text.contains("real-oncall-key"));
    assert!(
        !ev.iter().any(|e| e["type"] == "confirmation"),
        "a drill asked for confirmation"
    );
    assert_eq!(ev.last().unwrap()["status"], "succeeded");
}

#[test]
fn a_drill_past_max_duration_is_cancelled_and_fails() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("finished");
    let yaml = playbook(
        "slow",
        &format!(
            r#"
            steps:
              - id: hang
                shell: sleep 3; touch {m}
            drill:
              incident: {{ title: drill, labels: {{ app: slow }} }}
              max_duration: 1s
            "#,
            m = marker.display()
        ),
    );
    let start = Instant::now();
    let out = Test::new()
        .playbook("slow.yaml", &yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["drill", "slow"])
        .status(1)
        .stdout_contains("slow: exceeded max_duration 1.0s: the run was cancelled")
        .run();
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "the drill was not cancelled at its deadline"
    );
    let ev = events(&runs(&out.tempdir.path().join("state"))[0]);
    let hang = ev
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == "hang")
        .unwrap();
    assert_eq!(hang["status"], "cancelled");
    let cancelled = ev.iter().find(|e| e["type"] == "run_cancelled").unwrap();
    assert_eq!(cancelled["signal"], "drill max_duration of 1.0s reached");
    assert_eq!(ev.last().unwrap()["status"], "cancelled");
    std::thread::sleep(Duration::from_millis(3000));
    assert!(
        !marker.exists(),
        "the hung step outlived the cancelled drill"
    );

    // A resumed drill is still bounded by its max_duration.
    let dir = out.tempdir.path();
    let run = runs(&dir.join("state"))[0].clone();
    let run_id = run.file_name().unwrap().to_str().unwrap().to_string();
    let start = Instant::now();
    let resumed = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(dir)
        .env("IRCTL_STATE_DIR", "state")
        .env("XDG_CACHE_HOME", dir.join(".cache"))
        .args(["resume", &run_id])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // A deadline is the work failing, not an interruption.
    assert_eq!(resumed.status.code(), Some(1), "{resumed:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "not cancelled");
    let ev = events(&run);
    assert_eq!(
        ev.iter().filter(|e| e["type"] == "run_cancelled").count(),
        2
    );
    assert_eq!(ev.last().unwrap()["status"], "cancelled", "{:?}", ev.last());
}

#[test]
fn a_drill_whose_incident_does_not_select_its_playbook_fails_without_running() {
    let mismatch = playbook(
        "a",
        r#"
        steps:
          - id: s
            shell: touch ran-a
        drill:
          incident: { title: drill, labels: { app: b } }
        "#,
    );
    let confirm = playbook(
        "b",
        r#"
        steps:
          - id: restart
            confirm: "Restart?"
            shell: touch ran-b
        drill:
          incident: { title: drill, labels: { app: b } }
        "#,
    );
    let out = Test::new()
        .playbook("a.yaml", &mismatch)
        .playbook("b.yaml", &confirm)
        .env("IRCTL_STATE_DIR", "state")
        .args(["drill", "--all"])
        .status(1)
        .stdout_contains(
            "a: the drill incident does not match playbook `a`: app=\"a\" \u{2014} incident has app=\"b\"",
        )
        .stdout_contains("b: step `restart` asks for confirmation but is not `simulate_in_drill: true`")
        .stdout_contains("2 drills: 0 passed, 2 failed")
        .run();
    let dir = out.tempdir.path();
    assert!(!dir.join("ran-a").exists() && !dir.join("ran-b").exists());
    assert!(runs(&dir.join("state")).is_empty());

    // `validate` says so before the first drill does.
    Test::new()
        .playbook("b.yaml", &confirm)
        .args(["validate"])
        .stderr_contains("warning[drill-needs-confirmation]: step `restart` asks for confirmation, so the drill fails")
        .stderr_contains("help: add `simulate_in_drill: true`")
        .run();
}

/// Runs `irctl drill --due` at `now` over the same playbooks and state.
fn due_at(state: &Path, now: &str) -> common::Output {
    due_test(state, now).run()
}

/// `irctl drill --due` at `now` over a weekly and an unscheduled drill, ready to run.
fn due_test(state: &Path, now: &str) -> Test {
    let every_monday = playbook(
        "weekly",
        r#"
        steps:
          - id: s
            shell: "true"
        drill:
          schedule: "0 10 * * MON"
          incident: { title: drill, labels: { app: weekly } }
        "#,
    );
    let unscheduled = playbook(
        "manual",
        r#"
        steps:
          - id: s
            shell: "true"
        drill:
          incident: { title: drill, labels: { app: manual } }
        "#,
    );
    Test::new()
        .playbook("weekly.yaml", &every_monday)
        .playbook("manual.yaml", &unscheduled)
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .env("IRCTL_NOW", now)
        .args(["drill", "--due"])
}

#[test]
fn due_runs_missed_slots_once_and_never_early() {
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path();
    // 2026-03-02 is a Monday. Never drilled: due at once.
    let out = due_at(state, "2026-03-02T10:30:00Z");
    assert!(
        out.stderr.contains("weekly: never drilled, due now"),
        "{}",
        out.stderr
    );
    assert_eq!(runs(state).len(), 1);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(state.join("drills.json")).unwrap()).unwrap();
    assert_eq!(
        record["drills"]["weekly"]["last_at"],
        "2026-03-02T10:30:00Z"
    );
    assert_eq!(record["drills"]["weekly"]["result"], "passed");
    assert!(
        record["drills"].get("manual").is_none(),
        "an unscheduled drill ran under --due"
    );

    // The next hourly cron runs: nothing until next Monday 10:00.
    let out = due_at(state, "2026-03-02T11:30:00Z");
    assert!(
        out.stderr
            .contains("weekly: not due until 2026-03-09T10:00:00Z"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("no drill is due"));
    due_at(state, "2026-03-09T09:59:00Z");
    assert_eq!(runs(state).len(), 1);

    // The machine was off for two weeks: three slots missed, one drill.
    let out = due_at(state, "2026-03-23T13:00:00Z");
    assert!(
        out.stderr.contains(
            "weekly: due since 2026-03-09T10:00:00Z (3 slots since the last drill; running once)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(runs(state).len(), 2);
    due_at(state, "2026-03-23T14:00:00Z");
    assert_eq!(runs(state).len(), 2);
}

#[test]
fn a_drill_record_in_the_future_or_corrupt_never_silently_stops_drills() {
    let state_dir = tempfile::tempdir().unwrap();
    let state = state_dir.path();
    due_at(state, "2026-03-02T10:30:00Z");
    // The clock was a year ahead when that ran; now it is right again.
    let out = due_at(state, "2025-03-03T10:30:00Z");
    assert!(
        out.stderr.contains(
            "warning: weekly: last drill recorded at 2026-03-02T10:30:00Z, after now (2025-03-03T10:30:00Z)"
        ),
        "{}",
        out.stderr
    );
    assert_eq!(runs(state).len(), 2);
    // A hand-edited record is one clear input error naming the file.
    std::fs::write(state.join("drills.json"), "{ not json").unwrap();
    let out = due_test(state, "2025-03-10T10:30:00Z").status(2).run();
    assert!(
        out.stderr
            .contains("drills.json` is not a drill record; fix or remove it"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_unusable_state_dir_report_or_secrets_file_is_an_input_error_before_any_drill_runs() {
    let yaml = playbook(
        "d",
        "steps:\n  - id: s\n    shell: touch ran\ndrill:\n  incident: { title: drill, labels: { app: d } }\n",
    );
    let drill_all = |extra: &[&str]| {
        Test::new()
            .playbook("d.yaml", &yaml)
            .env("IRCTL_STATE_DIR", "state")
            .args(["drill", "--all"])
            .args(extra)
            .status(2)
            .stdout("")
    };
    let nothing_ran = |out: common::Output| assert!(!out.tempdir.path().join("ran").exists());
    nothing_ran(
        drill_all(&[])
            .file("state", "a file, not a directory")
            .stderr_contains("error: cannot use state directory `state`")
            .run(),
    );
    nothing_ran(
        drill_all(&["--report", "missing/drills.xml"])
            .stderr(
                "error: cannot write report `missing/drills.xml`: `missing` is not a directory\n",
            )
            .run(),
    );
    // The same secrets file serves every drill: unreadable, it fails them all.
    nothing_ran(
        drill_all(&["--secrets-file", "missing.env"])
            .stderr_contains("error: cannot read secrets file `missing.env`")
            .run(),
    );
}

#[test]
fn a_broken_playbook_file_fails_an_unattended_batch_but_not_a_named_drill() {
    let good = playbook(
        "good",
        "steps:\n  - id: s\n    shell: \"true\"\ndrill:\n  incident: { title: drill, labels: { app: good } }\n",
    );
    let test = || {
        Test::new()
            .playbook("good.yaml", &good)
            .playbook("broken.yaml", "version: 1\nname: [broken\n")
            .env("IRCTL_STATE_DIR", "state")
    };
    let out = test().args(["drill", "--all"]).status(1).run();
    assert!(
        out.stdout.contains(
            "playbooks/broken.yaml: the playbook file has errors, so its drill cannot run; `irctl validate` shows them"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("2 drills: 1 passed, 1 failed"),
        "{}",
        out.stdout
    );
    test()
        .args(["drill", "good"])
        .stdout_contains("1 drill: 1 passed, 0 failed")
        .run();
}

#[test]
fn overlapping_due_runs_do_not_drill_twice() {
    let test = Test::new().playbook(
        "slow.yaml",
        &playbook(
            "slow",
            r#"
            steps:
              - id: s
                shell: sleep 2
            drill:
              schedule: "0 * * * *"
              incident: { title: drill, labels: { app: slow } }
            "#,
        ),
    );
    let dir = test.path().to_path_buf();
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(&dir)
        .env("IRCTL_STATE_DIR", "state")
        .env("IRCTL_NOW", "2026-03-02T10:05:00Z")
        .args(["drill", "--due"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    wait_until(
        start + Duration::from_secs(20),
        Duration::from_millis(50),
        "the first drill never started",
        || (!runs(&dir.join("state")).is_empty()).then_some(()),
    );
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(&dir)
        .env("IRCTL_STATE_DIR", "state")
        .env("IRCTL_NOW", "2026-03-02T10:05:00Z")
        .args(["drill", "--due"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `irctl drill --due` is running"),
        "{stderr}"
    );
    let status = wait_until(
        start + Duration::from_secs(30),
        Duration::from_millis(50),
        "the first drill did not finish",
        || first.try_wait().unwrap(),
    );
    assert_eq!(status.code(), Some(0));
    assert_eq!(runs(&dir.join("state")).len(), 1);
    drop(test);
}

#[test]
fn junit_and_json_reports_parse_and_name_the_failed_step() {
    let passing = playbook(
        "good",
        r#"
        steps:
          - id: s
            shell: "true"
        drill:
          incident: { title: drill, labels: { app: good } }
          max_duration: 30s
        "#,
    );
    let failing = playbook(
        "bad",
        r#"
        steps:
          - id: check
            shell: echo broken >&2; exit 3
        drill:
          incident: { title: drill, labels: { app: bad } }
        "#,
    );
    let test = || {
        Test::new()
            .playbook("good.yaml", &passing)
            .playbook("bad.yaml", &failing)
            .env("IRCTL_STATE_DIR", "state")
            .status(1)
    };
    let out = test()
        .args(["drill", "--all", "--report", "drills.xml"])
        .run();
    let xml = std::fs::read_to_string(out.tempdir.path().join("drills.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("tests"), Some("2"));
    assert_eq!(suite.attribute("failures"), Some("1"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["bad", "good"]);
    let failure = cases[0]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("bad has a failure");
    assert_eq!(
        failure.attribute("message"),
        Some("step `check` failed: exited with status 3")
    );
    assert!(!cases[1].children().any(|n| n.has_tag_name("failure")));

    let out = test()
        .args([
            "drill",
            "good",
            "bad",
            "--report",
            "report.out",
            "--report-format",
            "json",
        ])
        .stdout_contains("FAILED STEP")
        .stdout_contains("bad: step `check` failed: exited with status 3")
        .run();
    insta::with_settings!({filters => vec![
        (r"\d{8}T\d{6}Z-[0-9a-f]{6}", "[RUN]"),
        (r"\b\d+(\.\d+)?(ms|s)\b", "[DURATION]"),
        ("\u{2500}+", "---"),
        (r" +", " "),
    ]}, {
        insta::assert_snapshot!("drill_table", out.stdout);
    });
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.tempdir.path().join("report.out")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(report["drills"][0]["playbook"], "good");
    assert_eq!(report["drills"][0]["max_duration_ms"], 30000);
    assert_eq!(report["drills"][1]["failed_step"], "check");

    Test::new()
        .playbook("good.yaml", &passing)
        .args(["drill", "good", "--report", "report.txt"])
        .status(2)
        .stderr_contains("cannot tell the report format of `report.txt`")
        .run();
}

#[test]
fn validate_checks_drill_notify_overrides_like_step_fields() {
    let yaml = playbook(
        "t",
        r#"
        secrets: [DRILL_SLACK]
        steps:
          - id: s
            shell: "true"
        drill:
          incident: { title: drill, labels: { app: t } }
          notify:
            slack: "{{ secrets.DRILL_SLACK }}"
            webhook: "{{ secrets.DRILL_HOOK }}"
        "#,
    );
    let out = Test::new()
        .playbook("t.yaml", &yaml)
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    let findings = out.json();
    let codes: Vec<_> = findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["code"].as_str().unwrap(), f["message"].as_str().unwrap()))
        .collect();
    assert!(
        codes.contains(&(
            "undeclared-secret",
            "secret `DRILL_HOOK` is not declared in `secrets:`"
        )),
        "{codes:?}"
    );
    assert!(
        !codes.iter().any(|(c, _)| *c == "unused-secret"),
        "{codes:?}"
    );
}

/// The weekly drill the scheduling examples run, with a playbook test, in `dir/`.
fn scheduled_drill(test: Test, dir: &str) -> Test {
    let weekly = playbook(
        "weekly",
        r#"
        owner: sre
        steps:
          - id: s
            shell: "true"
        drill:
          schedule: "0 10 * * MON"
          incident: { title: drill, labels: { app: weekly } }
        tests:
          - name: the step runs
            incident: { title: t, labels: { app: weekly } }
            results: { s: ok }
            expect: { status: succeeded }
        "#,
    );
    test.file(&format!("{dir}/weekly.yaml"), weekly)
}

/// The arguments after `irctl` in an example's command line, with absolute
/// paths made relative so they land in the test's temp dir.
fn irctl_args(command: &str) -> Vec<String> {
    let (_, rest) = command
        .split_once("irctl ")
        .unwrap_or_else(|| panic!("no `irctl` in {command:?}"));
    rest.split_whitespace()
        .map(|a| a.strip_prefix('/').unwrap_or(a).to_string())
        .collect()
}

/// Runs an example's `irctl drill --due` twice, an hour apart, in the temp
/// dir's `cwd`: the first run drills `weekly` and writes a JUnit report to
/// `report`, the second finds the record in `state` and drills nothing.
fn run_due_twice(example: &str, setup: impl Fn() -> Test, cwd: &str, state: &str, report: &str) {
    let out = setup()
        .current_dir(cwd)
        .env("IRCTL_NOW", "2026-03-02T10:07:00Z")
        .stderr_contains("weekly: never drilled, due now")
        .stdout_contains("1 drill: 1 passed, 0 failed")
        .run();
    let dir = out.tempdir.path().join(cwd);
    let xml = std::fs::read_to_string(dir.join(report))
        .unwrap_or_else(|e| panic!("{example}: no report at {report}: {e}"));
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{example}: {e}"));
    assert!(
        doc.descendants()
            .any(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("weekly")),
        "{example}: {xml}"
    );
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join(state).join("drills.json"))
            .unwrap_or_else(|e| panic!("{example}: no drill record in {state}: {e}")),
    )
    .unwrap();
    assert_eq!(record["drills"]["weekly"]["result"], "passed", "{example}");
    // The next hourly run sees the record: nothing is due.
    let again = setup()
        .current_dir(cwd)
        .env("IRCTL_NOW", "2026-03-02T11:07:00Z")
        .stderr_contains("weekly: not due until 2026-03-09T10:00:00Z")
        .stderr_contains("no drill is due");
    // Keep the first run's files: the second runs in a fresh copy of them.
    let record = Path::new(cwd).join(state).join("drills.json");
    let again = again.file(
        record.to_str().expect("utf-8 path"),
        std::fs::read(dir.join(state).join("drills.json")).unwrap(),
    );
    again.run();
}

#[test]
fn scheduling_examples_parse_and_run_drill_due() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();

    // cron: `cd /srv/playbooks && git pull ...; /usr/local/bin/irctl drill --due ...`.
    let crontab = read("cron/irctl-drill.crontab");
    let line = crontab
        .lines()
        .find(|l| !l.starts_with('#') && l.contains("irctl"))
        .unwrap();
    assert_eq!(
        line.split_whitespace().take(5).collect::<Vec<_>>(),
        ["7", "*", "*", "*", "*"]
    );
    let (cwd, command) = line
        .split_once("cd /")
        .and_then(|(_, rest)| rest.split_once(" && "))
        .map(|(cwd, rest)| {
            (
                cwd.to_string(),
                rest.split_once("; ").expect("git pull; irctl").1,
            )
        })
        .expect("cron line: cd DIR && ...; irctl ...");
    let args = irctl_args(command);
    assert_eq!(args[..2], ["drill", "--due"]);
    let flag = |name: &str| {
        let at = args
            .iter()
            .position(|a| a == name)
            .unwrap_or_else(|| panic!("{name} in {args:?}"));
        args[at + 1].clone()
    };
    let (state, secrets, report) = (
        flag("--state-dir"),
        flag("--secrets-file"),
        flag("--report"),
    );
    let cron = || {
        scheduled_drill(Test::new(), &format!("{cwd}/playbooks"))
            .dir(&format!("{cwd}/{state}"))
            .file(&format!("{cwd}/{secrets}"), "DRILL_TOKEN=t0k3n\n")
            .args(&args)
    };
    // The example's absolute paths are relative to `cwd` in the temp dir.
    run_due_twice("cron", cron, &cwd, &state, &report);

    // systemd: the timer starts the service, which runs ExecStart in WorkingDirectory.
    let timer = read("systemd/irctl-drill.timer");
    assert!(timer.contains("OnCalendar=hourly"));
    assert!(timer.contains("Persistent=true"));
    let service = read("systemd/irctl-drill.service");
    let value = |key: &str| {
        service
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_else(|| panic!("{key} in the service"))
            .to_string()
    };
    assert_eq!(value("StateDirectory="), "irctl");
    let exec = value("ExecStart=").replace("${STATE_DIRECTORY}", "/var/lib/irctl");
    assert!(
        exec.starts_with("/usr/local/bin/irctl drill --due"),
        "{exec}"
    );
    let cwd = value("WorkingDirectory=")
        .trim_start_matches('/')
        .to_string();
    let args = irctl_args(&exec);
    let systemd = || {
        scheduled_drill(Test::new(), &format!("{cwd}/playbooks"))
            .dir(&format!("{cwd}/var/lib/irctl"))
            .args(&args)
    };
    run_due_twice(
        "systemd",
        systemd,
        &cwd,
        "var/lib/irctl",
        "var/lib/irctl/drill-report.xml",
    );

    // Kubernetes: the CronJob's container args with its env, volumes mounted at `/`.
    let cronjob: serde_json::Value =
        serde_saphyr::from_str(&read("kubernetes/irctl-drill-cronjob.yaml")).unwrap();
    assert_eq!(cronjob["kind"], "CronJob");
    assert_eq!(cronjob["spec"]["schedule"], "7 * * * *");
    assert_eq!(cronjob["spec"]["concurrencyPolicy"], "Forbid");
    let container = &cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().trim_start_matches('/').to_string())
        .collect();
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let value = e["value"].as_str().unwrap().trim_start_matches('/');
            (e["name"].as_str().unwrap().to_string(), value.to_string())
        })
        .collect();
    let env_of = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} in the container env"))
    };
    let (playbooks, state) = (env_of("IRCTL_PLAYBOOKS"), env_of("IRCTL_STATE_DIR"));
    let kubernetes = || {
        let mut test = scheduled_drill(Test::new(), &playbooks)
            .dir(&state)
            .args(&args);
        for (k, v) in &env {
            test = test.env(k, v);
        }
        test
    };
    run_due_twice(
        "kubernetes",
        kubernetes,
        "",
        &state,
        &format!("{state}/drill-report.xml"),
    );

    // GitHub Actions: every `irctl` step, run as the workflow runs them, in a checkout.
    let workflow: serde_json::Value = serde_saphyr::from_str(&read("github/irctl.yml")).unwrap();
    let runs: Vec<String> = workflow["jobs"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|j| j["steps"].as_array().unwrap().iter())
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .filter(|r| r.starts_with("irctl "))
        .collect();
    assert_eq!(
        runs,
        [
            "irctl validate --format github --deny-warnings",
            "irctl test --report junit.xml",
            "irctl drill --due --state-dir .irctl-state --report drills.xml",
        ]
    );
    let out = scheduled_drill(Test::new(), "playbooks")
        .args(irctl_args(&runs[0]))
        .stdout("")
        .run();
    drop(out);
    let out = scheduled_drill(Test::new(), "playbooks")
        .args(irctl_args(&runs[1]))
        .stdout_contains("1 passed")
        .run();
    let junit = std::fs::read_to_string(out.tempdir.path().join("junit.xml")).unwrap();
    roxmltree::Document::parse(&junit).unwrap();
    let github = || scheduled_drill(Test::new(), "playbooks").args(irctl_args(&runs[2]));
    run_due_twice("github", github, "", ".irctl-state", "drills.xml");
}
