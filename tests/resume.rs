//! `irctl resume` end to end: a failed run continued after the cause is
//! fixed, a SIGKILLed run completed, a changed playbook refused (and forced),
//! and `idempotent: false` steps that are not repeated without approval.

mod common;
#[path = "support/wait.rs"]
mod wait;

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Test, unindent};
use wait::wait_until;

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\ndrill:\n  incident: {{ title: d, labels: {{ app: t }} }}\n{}",
        unindent(steps)
    )
}

/// Runs `steps` as playbook `t` for the ad hoc incident `app=t`, with the
/// state in `state`, and expects the run to fail; the temp dir lives as long
/// as the output.
fn failed_run(steps: &str) -> common::Output {
    Test::new()
        .playbook("t.yaml", &playbook(steps))
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .status(1)
        .run()
}

/// `irctl ARGS` in `dir` with the state in `dir/state`, stdin not a terminal.
fn irctl(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_irctl"));
    #[allow(clippy::disallowed_methods)] // tests inspect the real environment, not irctl's view
    let inherited = std::env::vars_os();
    for (key, _) in inherited {
        if key.to_string_lossy().starts_with("IRCTL_") {
            cmd.env_remove(&key);
        }
    }
    cmd.current_dir(dir)
        .env("IRCTL_STATE_DIR", "state")
        .env("IRCTL_ACTOR", "alice")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run irctl")
}

/// [`irctl`], expecting exit code `code` (its stderr shown when it differs).
#[track_caller]
fn exits(dir: &Path, args: &[&str], code: i32) -> Output {
    let out = irctl(dir, args);
    assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
    out
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that `text` contains `needle`, showing `text` when it does not.
#[track_caller]
fn assert_has(text: &str, needle: &str) {
    assert!(text.contains(needle), "{text}");
}

/// The only run's id.
fn run_id(dir: &Path) -> String {
    let mut runs = std::fs::read_dir(dir.join("state/runs")).expect("a run");
    let id = runs.next().expect("a run").unwrap().file_name();
    assert!(runs.next().is_none(), "resume must not create a second run");
    id.to_string_lossy().into_owned()
}

fn timeline_path(dir: &Path) -> PathBuf {
    dir.join("state/runs")
        .join(run_id(dir))
        .join("timeline.jsonl")
}

/// The timeline's events, after checking the hash chain from the first to the last.
fn verified_events(dir: &Path) -> Vec<irctl::timeline::Event> {
    let tl = irctl::timeline::read(&timeline_path(dir)).unwrap();
    assert!(!tl.torn_tail && tl.bad_lines.is_empty());
    let mut prev = String::new();
    for (i, e) in tl.events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seq is continuous");
        assert_eq!(
            irctl::timeline::chain_hash(&prev, e),
            e.hash,
            "chain broken at seq {}",
            e.seq
        );
        prev = e.hash.clone();
    }
    tl.events
}

/// An event as its JSON line says it (the on-disk format is the contract).
fn json(e: &irctl::timeline::Event) -> serde_json::Value {
    serde_json::to_value(e).unwrap()
}

fn kinds(events: &[irctl::timeline::Event]) -> Vec<&str> {
    events.iter().map(|e| e.kind()).collect()
}

/// How many times each step ran (each appends a line to `count-ID`).
fn count(dir: &Path, step: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("count-{step}")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn a_failed_run_resumes_from_the_failed_step_with_earlier_outputs() {
    let out = failed_run(
        r#"
        steps:
          - id: a
            shell: echo a >> count-a; echo hello-from-a
          - id: side
            shell: echo side >> count-side
          - id: b
            needs: [a]
            shell: echo b >> count-b; test -f marker
          - id: c
            needs: [b, side]
            shell: echo c >> count-c; echo "a said {{ steps.a.stdout | trim }}"
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    std::fs::write(dir.join("marker"), "").unwrap();

    let resumed = exits(dir, &["resume", &id], 0);
    assert_has(
        &stderr(&resumed),
        &format!(
            "resuming run {id} (attempt 2, previous attempt failed): reusing a, side; running b, c"
        ),
    );
    assert_eq!(
        [
            count(dir, "a"),
            count(dir, "side"),
            count(dir, "b"),
            count(dir, "c")
        ],
        [1, 1, 2, 1]
    );

    let ev = verified_events(dir);
    assert_eq!(
        kinds(&ev).iter().filter(|k| **k == "run_finished").count(),
        2,
        "{:?}",
        kinds(&ev)
    );
    let resumed_at = ev.iter().position(|e| e.kind() == "run_resumed").unwrap();
    let r = &ev[resumed_at];
    assert_eq!(json(r)["attempt"], 2);
    assert_eq!(json(r)["previous"], "failed");
    assert_eq!(json(r)["reused"], serde_json::json!(["a", "side"]));
    let after: Vec<_> = ev[resumed_at..]
        .iter()
        .filter(|e| e.kind() == "step_started")
        .map(|e| json(e)["step"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(after, ["b", "c"]);
    let c = ev
        .iter()
        .find(|e| e.kind() == "step_finished" && json(e)["step"] == "c")
        .unwrap();
    assert_eq!(json(c)["stdout"], "a said hello-from-a\n");
    assert_eq!(json(ev.last().unwrap())["status"], "succeeded");
    assert!(ev.iter().all(|e| e.run_id == id));

    assert!(String::from_utf8_lossy(&resumed.stdout).starts_with(&format!("run {id}\n")));
    let unknown = exits(dir, &["resume", "20990101T000000Z-000000"], 2);
    assert_has(
        &stderr(&unknown),
        "error: no run `20990101T000000Z-000000` in `state`",
    );

    let again = exits(dir, &["resume", &id], 2);
    assert_has(
        &stderr(&again),
        &format!("run `{id}` succeeded; there is nothing to resume"),
    );

    // The record commands read the resumed run as one run that succeeded on
    // its second attempt, with an intact chain.
    let runs = irctl(dir, &["runs", "--format", "json"]);
    let runs: serde_json::Value = serde_json::from_slice(&runs.stdout).unwrap();
    assert_eq!(runs.as_array().unwrap().len(), 1);
    assert_eq!(runs[0]["status"], "succeeded");
    exits(dir, &["timeline", "verify", &id], 0);
    let table = irctl(dir, &["timeline", &id]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("attempt 2 by alice, reusing a, side"),
        "{table}"
    );
    exits(
        dir,
        &[
            "postmortem",
            "--incident",
            runs[0]["incident_id"].as_str().unwrap(),
        ],
        0,
    );
}

#[test]
fn a_sigkilled_run_resumes_and_completes() {
    let test = Test::new().playbook(
        "t.yaml",
        &playbook(
            r#"
            steps:
              - id: a
                shell: echo a >> count-a
              - id: slow
                needs: [a]
                shell: echo slow >> count-slow; echo $$ > slow.pid; test -f marker || sleep 30
              - id: after
                needs: [slow]
                shell: echo after >> count-after
            "#,
        ),
    );
    let dir = test.path().to_path_buf();
    let mut child = Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(&dir)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let step_pid: i32 = wait_until(
        start + Duration::from_secs(20),
        Duration::from_millis(50),
        "the slow step never started",
        || {
            std::fs::read_to_string(dir.join("slow.pid"))
                .ok()?
                .trim()
                .parse()
                .ok()
        },
    );
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), None, "irctl was killed");
    // The step runs in its own process group, which SIGKILL of irctl cannot clean up; the test does.
    let _ = nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(step_pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    let before = verified_events(&dir);
    assert!(!kinds(&before).contains(&"run_finished"));

    std::fs::write(dir.join("marker"), "").unwrap();
    let id = run_id(&dir);
    exits(&dir, &["resume", &id], 0);
    assert_eq!(
        [count(&dir, "a"), count(&dir, "slow"), count(&dir, "after")],
        [1, 2, 1]
    );
    let ev = verified_events(&dir);
    let r = ev.iter().find(|e| e.kind() == "run_resumed").unwrap();
    assert_eq!(json(r)["previous"], "unfinished (killed, or still running)");
    assert_eq!(json(ev.last().unwrap())["status"], "succeeded");
    drop(test);
}

#[test]
fn a_changed_playbook_is_refused_naming_both_blobs_unless_forced() {
    let out = failed_run(
        r#"
        steps:
          - id: a
            shell: test -f marker
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    let recorded = json(&verified_events(dir)[0])["provenance"]["blob"]
        .as_str()
        .unwrap()
        .to_string();
    let playbook_file = dir.join("playbooks/t.yaml");
    let yaml = std::fs::read_to_string(&playbook_file).unwrap();
    std::fs::write(
        &playbook_file,
        format!("{yaml}# reviewed after the incident\n"),
    )
    .unwrap();
    std::fs::write(dir.join("marker"), "").unwrap();

    let refused = exits(dir, &["resume", &id], 2);
    let message = stderr(&refused);
    assert!(
        message.contains(&format!(
            "error: playbook `t` changed since run {id}: it ran blob {} (playbooks/t.yaml), the file is now blob ",
            &recorded[..12]
        )),
        "{message}"
    );
    assert!(message.contains("pass `--force` to resume with the current file"));
    assert_eq!(kinds(&verified_events(dir)).last(), Some(&"run_finished"));

    exits(dir, &["resume", &id, "--force"], 0);
    let ev = verified_events(dir);
    let r = ev.iter().find(|e| e.kind() == "run_resumed").unwrap();
    assert_eq!(json(r)["forced"], true);
    assert_eq!(json(r)["recorded_provenance"]["blob"], recorded.as_str());
    let now = json(r)["provenance"]["blob"].as_str().unwrap().to_string();
    assert_ne!(now, recorded);
    assert!(
        message.contains(&format!("the file is now blob {}", &now[..12])),
        "{message}"
    );
}

#[test]
fn a_non_idempotent_step_is_not_repeated_without_approval() {
    let out = failed_run(
        r#"
        steps:
          - id: restart
            idempotent: false
            shell: echo r >> count-restart; test -f marker
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    std::fs::write(dir.join("marker"), "").unwrap();
    let events_before = verified_events(dir).len();

    let refused = exits(dir, &["resume", &id], 1);
    assert_has(
        &stderr(&refused),
        &format!(
            "error: step `restart` is `idempotent: false` and already ran in an earlier attempt of run `{id}`; pass `--yes` to run it again"
        ),
    );
    assert_eq!(count(dir, "restart"), 1);
    assert_eq!(
        verified_events(dir).len(),
        events_before,
        "a refused resume wrote to the timeline"
    );

    exits(dir, &["resume", &id, "--yes"], 0);
    assert_eq!(count(dir, "restart"), 2);
    let ev = verified_events(dir);
    let r = ev.iter().find(|e| e.kind() == "run_resumed").unwrap();
    assert_eq!(
        json(r)["approved_repeats"],
        serde_json::json!([{ "step": "restart", "by": "alice", "via": "--yes" }])
    );
}

#[test]
fn a_run_that_is_still_running_is_not_resumed() {
    let test = Test::new().playbook(
        "t.yaml",
        &playbook(
            r#"
            steps:
              - id: hold
                shell: touch started; sleep 20
            "#,
        ),
    );
    let dir = test.path().to_path_buf();
    let mut child = Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(&dir)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    wait_until(
        start + Duration::from_secs(20),
        Duration::from_millis(50),
        "the run never started its step",
        || dir.join("started").exists().then_some(()),
    );
    let id = run_id(&dir);
    let refused = exits(&dir, &["resume", &id], 1);
    assert_has(
        &stderr(&refused),
        &format!("another run ({id}) is already running playbook `t`"),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = child.wait();
    drop(test);
}

#[test]
fn a_torn_last_line_is_cut_off_before_resuming() {
    let out = failed_run(
        r#"
        steps:
          - id: a
            shell: test -f marker
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    // A writer killed in the middle of a line leaves half an event behind.
    let torn = r#"{"ts":"2026-01-01T00:00:00.000Z","seq":99,"type":"no"#;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(timeline_path(dir))
        .unwrap();
    std::io::Write::write_all(&mut file, torn.as_bytes()).unwrap();
    drop(file);
    std::fs::write(dir.join("marker"), "").unwrap();

    let resumed = exits(dir, &["resume", &id], 0);
    assert_has(
        &stderr(&resumed),
        "warning: the timeline ends in a torn line",
    );
    let ev = verified_events(dir);
    let r = ev.iter().find(|e| e.kind() == "run_resumed").unwrap();
    assert_eq!(json(r)["torn_tail_bytes"], torn.len());
    assert_eq!(json(ev.last().unwrap())["status"], "succeeded");
}

#[test]
fn a_run_id_that_leaves_the_state_dir_is_refused() {
    let out = failed_run(
        r#"
        steps:
          - id: a
            shell: test -f marker
        "#,
    );
    let dir = out.tempdir.path();
    // A failed run's timeline outside the state directory, reachable by `..`.
    std::fs::create_dir(dir.join("elsewhere")).unwrap();
    let outside = dir.join("elsewhere/timeline.jsonl");
    std::fs::copy(timeline_path(dir), &outside).unwrap();
    let before = std::fs::read(&outside).unwrap();
    std::fs::write(dir.join("marker"), "").unwrap();

    for id in ["../../elsewhere", "", "."] {
        let refused = exits(dir, &["resume", id], 2);
        assert_has(
            &stderr(&refused),
            &format!("error: no run `{id}` in `state`"),
        );
    }
    assert_eq!(std::fs::read(&outside).unwrap(), before);
}

#[test]
fn an_edited_timeline_is_resumed_with_a_warning_kept_in_the_record() {
    let out = failed_run(
        r#"
        steps:
          - id: a
            shell: echo from-a
          - id: b
            needs: [a]
            shell: test -f marker
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    let path = timeline_path(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("from-a"));
    std::fs::write(&path, text.replace("from-a", "from-someone-else")).unwrap();
    std::fs::write(dir.join("marker"), "").unwrap();

    let resumed = exits(dir, &["resume", &id], 0);
    assert_has(
        &stderr(&resumed),
        &format!("warning: the hash chain of run `{id}` is broken (event seq"),
    );
    let tl = irctl::timeline::read(&path).unwrap();
    let r = tl
        .events
        .iter()
        .find(|e| e.kind() == "run_resumed")
        .unwrap();
    assert!(
        json(r)["chain_broken"]
            .as_str()
            .is_some_and(|m| m.contains("was altered")),
        "{:?}",
        json(r)
    );
    let shown = irctl(dir, &["timeline", &id]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("over a broken hash chain"),
        "{}",
        String::from_utf8_lossy(&shown.stdout)
    );
}

#[test]
fn ids_edited_into_multibyte_text_are_shortened_without_a_panic() {
    let out = failed_run(
        r#"
        steps:
          - id: a
            shell: test -f marker
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    let path = timeline_path(dir);
    let text = std::fs::read_to_string(&path).unwrap();
    let edited = text.replacen(
        r#""provenance":{"#,
        r#""provenance":{"commit":"aéééééééé","#,
        1,
    );
    assert_ne!(edited, text);
    std::fs::write(&path, edited).unwrap();

    let runs = exits(dir, &["runs"], 0);
    assert!(String::from_utf8_lossy(&runs.stdout).contains("t@aééééééé "));
    let playbook_file = dir.join("playbooks/t.yaml");
    let changed = std::fs::read_to_string(&playbook_file).unwrap() + "# changed\n";
    std::fs::write(&playbook_file, changed).unwrap();
    let refused = exits(dir, &["resume", &id], 2);
    assert_has(&stderr(&refused), "at commit aéééééééé (");
}

#[test]
fn steps_downstream_of_a_rerun_step_run_again_and_a_fixed_rollback_is_announced() {
    let out = failed_run(
        r#"
        steps:
          - id: deploy
            shell: echo d >> count-deploy
          - id: verify
            needs: [deploy]
            shell: echo v >> count-verify; exit 1
          - id: rollback
            needs: [verify]
            trigger: on_failure
            shell: echo r >> count-rollback; test -f marker
          - id: announce
            needs: [rollback]
            trigger: always
            idempotent: false
            shell: |
              echo "rollback: {{ steps.rollback.status }}" >> channel
        "#,
    );
    let dir = out.tempdir.path();
    let id = run_id(dir);
    let channel = || std::fs::read_to_string(dir.join("channel")).unwrap_or_default();
    assert_eq!(channel(), "rollback: failed\n");
    std::fs::write(dir.join("marker"), "").unwrap();

    // The announcement succeeded, but what it said is stale: it runs again,
    // and being `idempotent: false` it still asks first.
    let refused = exits(dir, &["resume", &id], 1);
    assert_has(
        &stderr(&refused),
        "error: step `announce` is `idempotent: false` and already ran",
    );
    assert_eq!(channel(), "rollback: failed\n");

    let resumed = exits(dir, &["resume", &id, "--yes"], 1);
    assert_has(
        &stderr(&resumed),
        "reusing deploy; running verify, rollback, announce",
    );
    assert_eq!(channel(), "rollback: failed\nrollback: succeeded\n");
    assert_eq!(
        [
            count(dir, "deploy"),
            count(dir, "verify"),
            count(dir, "rollback")
        ],
        [1, 2, 2]
    );
    let ev = verified_events(dir);
    let r = ev.iter().find(|e| e.kind() == "run_resumed").unwrap();
    assert_eq!(json(r)["reused"], serde_json::json!(["deploy"]));
    assert_eq!(
        json(r)["approved_repeats"],
        serde_json::json!([{ "step": "announce", "by": "alice", "via": "--yes" }])
    );
}
