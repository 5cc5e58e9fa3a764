//! Unattended approvals through the real binary: a run with no terminal and
//! `--approval wait` records `approval_requested`, sends the playbook's
//! `approvals.notify` to a receiver on 127.0.0.1, and waits; the command
//! that notification carries, run as another process, answers it (approve
//! or deny), and nobody answering declines the step at `confirm_timeout`.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/wait.rs"]
mod wait;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{Test, timeline_events, unindent};
use receiver::Receiver;
use wait::wait_until;

/// A playbook whose `restart` step asks, with approval requests to `slack`.
fn playbook(slack: &str, timeout: &str) -> String {
    unindent(&format!(
        r#"
        version: 1
        name: restart-api
        title: Restart the API
        match:
          labels: ['app="t"']
        approvals:
          notify:
            slack:
              webhook: "{slack}"
              text: "*{{{{ playbook.title }}}}* for {{{{ incident.labels.host }}}}"
        steps:
          - id: look
            shell: "true"
          - id: restart
            needs: [look]
            confirm: "Restart the API on {{{{ incident.labels.host }}}}?"
            confirm_timeout: {timeout}
            shell: echo restarted
        "#
    ))
}

/// `irctl` in `dir` with a clean environment, like the `Test` builder.
fn irctl(dir: &Path) -> Command {
    let mut cmd = common::irctl_in(dir);
    cmd.env("IRCTL_ACTOR", "runner");
    cmd
}

/// Starts `irctl run --approval wait` for an incident on `host`.
fn start_run(dir: &Path, host: &str) -> Child {
    irctl(dir)
        .args([
            "run",
            "restart-api",
            "--approval",
            "wait",
            "--state-dir",
            "state",
        ])
        .args(["--label", "app=t", "--label", &format!("host={host}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start irctl run")
}

/// Waits (bounded) for the run to exit.
fn finish(child: Child) -> Output {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut child = child;
    wait_until(
        deadline,
        Duration::from_millis(50),
        "the run never ended",
        || child.try_wait().ok().flatten(),
    );
    child.wait_with_output().expect("run output")
}

/// The Slack message the receiver got, once it got one.
fn approval_message(slack: &Receiver) -> String {
    let body = wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        "no approval request reached the receiver",
        || slack.requests().first().map(|r| r.body.clone()),
    );
    let json: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    json["text"].as_str().expect("text").to_string()
}

/// The line of `text` that starts with `label`, without it.
fn line<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in:\n{text}"))
}

/// Runs a command as the notification wrote it, as another process.
fn run_command(dir: &Path, command: &str, extra: &[&str]) -> Output {
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("irctl"), "{command}");
    irctl(dir)
        .args(words)
        .args(extra)
        .output()
        .expect("run the command")
}

fn events_of(dir: &Path, kind: &str) -> Vec<serde_json::Value> {
    timeline_events(dir)
        .into_iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn setup(slack: &Receiver, timeout: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("playbooks")).unwrap();
    std::fs::write(
        dir.path().join("playbooks/restart.yaml"),
        playbook(&slack.url("/services/T/B/X"), timeout),
    )
    .unwrap();
    dir
}

fn state(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir.join("state")).unwrap()
}

#[test]
fn the_command_in_the_notification_approves_from_another_process() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack, "2m");
    let run = start_run(dir.path(), "<!channel> <http://evil|db-1>");
    let text = approval_message(&slack);

    // The author's text, then the request, every value escaped for Slack.
    assert!(
        text.starts_with("*Restart the API* for &lt;!channel&gt; &lt;http://evil|db-1&gt;\n\n"),
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");
    assert_eq!(
        line(&text, "Question: "),
        "Restart the API on &lt;!channel&gt; &lt;http://evil|db-1&gt;?"
    );
    assert!(
        text.contains("Waits 2m00s, then the step is declined."),
        "{text}"
    );
    let approve = line(&text, "Approve: ").to_string();
    let deny = line(&text, "Deny: ").to_string();
    let run_id = events_of(dir.path(), "run_started")[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        approve,
        format!(
            "irctl approve {run_id} restart --state-dir {}",
            state(dir.path()).display()
        )
    );
    assert_eq!(deny, format!("{approve} --deny"));

    // A step that does not wait is refused, and so is a malformed one.
    let out = run_command(dir.path(), &approve.replace(" restart ", " look "), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("step `look` of run"));
    let out = run_command(dir.path(), &approve.replace(" restart ", " ../x "), &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");

    let out = run_command(
        dir.path(),
        &approve,
        &["--as", "bob", "--reason", "on call"],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("approved step restart of run"));

    let out = finish(run);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // A second answer is refused, not applied twice.
    let again = run_command(dir.path(), &deny, &[]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");

    let requested = &events_of(dir.path(), "approval_requested")[0];
    assert_eq!(requested["step"], "restart");
    assert_eq!(requested["approve"], approve.as_str());
    assert_eq!(requested["deny"], deny.as_str());
    assert_eq!(requested["timeout_ms"], 120_000);
    let confirmation = &events_of(dir.path(), "confirmation")[0];
    assert_eq!(confirmation["answer"], "yes");
    assert_eq!(confirmation["by"], "bob");
    assert_eq!(confirmation["via"], "irctl approve");
    assert_eq!(confirmation["reason"], "on call");
    assert_eq!(events_of(dir.path(), "notification")[0]["target"], "slack");
    let finished: Vec<_> = events_of(dir.path(), "step_finished");
    assert!(
        finished
            .iter()
            .any(|e| e["step"] == "restart" && e["status"] == "succeeded")
    );
}

#[test]
fn deny_declines_the_step_and_a_short_run_id_is_enough() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack, "2m");
    let run = start_run(dir.path(), "db-1");
    let text = approval_message(&slack);
    let approve = line(&text, "Approve: ");
    let run_id = approve.split_whitespace().nth(2).unwrap().to_string();
    let short = &run_id[run_id.len() - 6..];
    let out = irctl(dir.path())
        .args([
            "approve",
            short,
            "restart",
            "--deny",
            "--state-dir",
            "state",
        ])
        .env("IRCTL_ACTOR", "carol")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("declined step restart"));

    let out = finish(run);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let confirmation = &events_of(dir.path(), "confirmation")[0];
    assert_eq!(confirmation["answer"], "no");
    assert_eq!(confirmation["by"], "carol");
    assert_eq!(confirmation["via"], "irctl approve --deny");
    let restart = events_of(dir.path(), "step_finished")
        .into_iter()
        .find(|e| e["step"] == "restart")
        .unwrap();
    assert_eq!(restart["status"], "failed");
    assert_eq!(restart["error"], "confirmation declined");
    assert!(
        !timeline_events(dir.path())
            .iter()
            .any(|e| e["type"] == "step_started" && e["step"] == "restart")
    );
}

#[test]
fn nobody_answering_declines_the_step_at_its_confirm_timeout() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack, "1s");
    let run = start_run(dir.path(), "db-1");
    let out = finish(run);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let confirmation = &events_of(dir.path(), "confirmation")[0];
    assert_eq!(confirmation["answer"], "no");
    assert_eq!(confirmation["by"], "irctl");
    assert_eq!(confirmation["via"], "no answer within 1.0s");
    let restart = events_of(dir.path(), "step_finished")
        .into_iter()
        .find(|e| e["step"] == "restart")
        .unwrap();
    assert_eq!(
        restart["error"],
        "confirmation declined: no answer within 1.0s"
    );
    // The timeout answered; a late approval is refused.
    let text = approval_message(&slack);
    let late = run_command(dir.path(), line(&text, "Approve: "), &[]);
    assert_eq!(late.status.code(), Some(1), "{late:?}");
}

#[test]
fn a_dead_run_is_not_approved_and_resume_asks_again() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack, "2m");
    let mut run = start_run(dir.path(), "db-1");
    let text = approval_message(&slack);
    let approve = line(&text, "Approve: ").to_string();
    run.kill().unwrap();
    run.wait().unwrap();

    let out = run_command(dir.path(), &approve, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is no longer running"), "{err}");
    assert!(err.contains("irctl resume"), "{err}");

    let run_id = approve.split_whitespace().nth(2).unwrap().to_string();
    let resumed = irctl(dir.path())
        .args([
            "resume",
            &run_id,
            "--approval",
            "wait",
            "--state-dir",
            "state",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        Instant::now() + Duration::from_secs(30),
        Duration::from_millis(50),
        "the resumed run never asked again",
        || (events_of(dir.path(), "approval_requested").len() == 2).then_some(()),
    );
    let out = run_command(dir.path(), &approve, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = finish(resumed);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn without_wait_a_run_with_no_terminal_fails_at_once() {
    Test::new()
        .playbook("restart.yaml", &playbook("http://127.0.0.1:9/x", "2m"))
        .args(["run", "restart-api", "--state-dir", "state"])
        .args(["--label", "app=t", "--label", "host=db-1"])
        .status(1)
        .stderr_contains("confirmation required: no terminal to ask and `--yes` not given")
        .run();
}

#[test]
fn validate_checks_confirm_timeout_and_approvals() {
    let yaml = unindent(
        r#"
        version: 1
        name: p
        title: P
        approvals:
          notify:
            slack: { webhook: "https://hooks.slack.example/x", text: "{{ steps.a.stdout }}" }
        steps:
          - id: a
            shell: "true"
            confirm_timeout: 0s
          - id: b
            shell: "true"
            confirm: "go?"
            confirm_timeout: soon
        "#,
    );
    Test::new()
        .playbook("p.yaml", &yaml)
        .args(["validate"])
        .status(1)
        .stderr_contains("confirm-timeout-without-confirm")
        .stderr_contains("`steps.a.confirm_timeout` must be longer than zero")
        .stderr_contains("`steps.b.confirm_timeout`")
        .stderr_contains("approvals.notify.slack.text")
        .run();
}
