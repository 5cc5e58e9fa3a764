//! A run still in flight when its alert resolves, through the real binary:
//! the resolved payload's `irctl run` tells it, so steps not yet started see
//! `incident.resolved` (and `when: not incident.resolved` skips the
//! remediation); a waiting approval is cancelled; and only a playbook with
//! `cancel_on_resolve: true` has its run stopped, by SIGTERM, recorded as
//! cancelled by the resolution.

mod common;
#[path = "support/state.rs"]
mod state;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{timeline_events, unindent};
use state::alertmanager;
use wait::wait_until;

/// A playbook for the `ApiDown` alert: a slow diagnosis, then `remediate`
/// unless the incident has resolved by then.
fn playbook(cancel: bool, slow: &str) -> String {
    unindent(&format!(
        r#"
        version: 1
        name: api-down
        title: API down
        auto: true
        cancel_on_resolve: {cancel}
        match:
          labels: ['alertname="ApiDown"']
        steps:
          - id: diagnose
            shell: "{slow}"
          - id: remediate
            needs: [diagnose]
            when: not incident.resolved
            shell: echo restarting
        "#
    ))
}

fn irctl(dir: &Path) -> Command {
    let mut cmd = common::irctl_in(dir);
    cmd.env("IRCTL_ACTOR", "alice")
        .env("IRCTL_STATE_DIR", "state")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn setup(yaml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(dir.path().join("playbooks/api.yaml"), yaml).unwrap();
    std::fs::write(
        dir.path().join("firing.json"),
        alertmanager("firing", "0001-01-01T00:00:00Z"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("resolved.json"),
        alertmanager("resolved", "2000-01-01T10:30:00Z"),
    )
    .unwrap();
    dir
}

/// Starts the firing payload's run and waits until `step` has started.
fn start_firing(dir: &Path, args: &[&str], until: &str) -> Child {
    let child = irctl(dir)
        .args(["run", "--incident", "firing.json"])
        .args(args)
        .spawn()
        .expect("start irctl run");
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        &format!("the run never reached `{until}`"),
        || {
            common::try_timeline_text(dir)
                .filter(|t| t.contains(until))
                .map(|_| ())
        },
    );
    child
}

fn finish(mut child: Child) -> Output {
    wait_until(
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(50),
        "the run never ended",
        || child.try_wait().ok().flatten(),
    );
    child.wait_with_output().expect("run output")
}

fn resolve(dir: &Path) -> Output {
    let out = irctl(dir)
        .args(["run", "--incident", "resolved.json"])
        .output()
        .expect("run the resolved payload");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    out
}

fn of(events: &[serde_json::Value], kind: &str, step: &str) -> serde_json::Value {
    events
        .iter()
        .find(|e| e["type"] == kind && (step.is_empty() || e["step"] == step))
        .cloned()
        .unwrap_or_else(|| panic!("no `{kind}` for `{step}` in {events:#?}"))
}

#[test]
fn a_resolution_reaches_the_run_in_flight_and_when_skips_the_remediation() {
    let dir = setup(&playbook(false, "sleep 2"));
    let run = start_firing(dir.path(), &[], "\"step_started\"");
    let out = resolve(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "was in flight: the run goes on; steps not yet started see `incident.resolved`"
        ),
        "{err}"
    );
    let out = finish(run);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let events = timeline_events(dir.path());
    assert_eq!(
        of(&events, "step_finished", "diagnose")["status"],
        "succeeded"
    );
    let warning = of(&events, "warning", "");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .starts_with("the incident resolved at 2000-01-01T10:30:00.000Z (recorded by alice from alertmanager) while this run was in flight"),
        "{warning}"
    );
    let skipped = of(&events, "step_skipped", "remediate");
    assert_eq!(skipped["status"], "skipped");
    assert_eq!(skipped["reason"], "when was false: not incident.resolved");
    assert_eq!(of(&events, "run_finished", "")["status"], "succeeded");
}

#[test]
fn cancel_on_resolve_stops_the_run_with_sigterm_recorded_as_the_resolution() {
    let dir = setup(&playbook(true, "sleep 30"));
    let run = start_firing(dir.path(), &[], "\"step_started\"");
    let started = Instant::now();
    let out = resolve(dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the run was cancelled (`cancel_on_resolve`)"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    let out = finish(run);
    assert_eq!(out.status.code(), Some(130), "{out:?}");

    let events = timeline_events(dir.path());
    assert_eq!(
        of(&events, "step_finished", "diagnose")["status"],
        "cancelled"
    );
    let skipped = of(&events, "step_skipped", "remediate");
    assert_eq!(skipped["status"], "cancelled");
    let cancelled = of(&events, "run_cancelled", "");
    assert_eq!(
        cancelled["signal"],
        "incident resolved at 2000-01-01T10:30:00.000Z (cancel_on_resolve; SIGTERM from alice)"
    );
    assert_eq!(of(&events, "run_finished", "")["status"], "cancelled");
}

#[test]
fn a_waiting_approval_of_a_resolved_run_is_cancelled() {
    let yaml = unindent(
        r#"
        version: 1
        name: api-down
        title: API down
        auto: true
        match:
          labels: ['alertname="ApiDown"']
        steps:
          - id: restart
            confirm: "Restart the API?"
            shell: echo restarting
          - id: after
            needs: [restart]
            shell: echo after
        "#,
    );
    let dir = setup(&yaml);
    let run = start_firing(
        dir.path(),
        &["--approval", "wait"],
        "\"approval_requested\"",
    );
    resolve(dir.path());
    let out = finish(run);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let events = timeline_events(dir.path());
    let skipped = of(&events, "step_skipped", "restart");
    assert_eq!(
        skipped["reason"],
        "approval cancelled: the incident resolved at 2000-01-01T10:30:00.000Z while the step waited"
    );
    assert_eq!(
        of(&events, "step_skipped", "after")["reason"],
        "need restart was skipped"
    );
    assert!(!events.iter().any(|e| e["type"] == "step_started"));
}
