//! Hand-offs through the binary, against a local receiver standing in for
//! Slack, Teams, PagerDuty and a webhook: who got which message, that chat
//! markup in the record cannot ping or disguise a link, that no secret
//! value is ever shown, written or sent as text, that acceptance changes
//! the owner, and that `handoff remind` sends each reminder once.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/state.rs"]
mod state;

use std::path::Path;

use receiver::{Received, Receiver};
use state::State;

const SLACK_TOKEN: &str = "slack-s3cr3t-T0KEN-abc";
const TEAMS_TOKEN: &str = "teams-s3cr3t-T0KEN-def";
const PD_KEY: &str = "pd-routing-K3Y-0123456789";
const HOOK_TOKEN: &str = "hook-s3cr3t-T0KEN-ghi";
const NOTE: &str =
    "<!channel> [Open runbook](http://evil.example) <http://evil|click> pd-routing-K3Y-0123456789";

/// A playbook folder with a teams file naming every kind of channel, and
/// the secrets file that gives their values.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new(receiver: &Receiver) -> Repo {
        let dir = tempfile::tempdir().unwrap();
        let pb = dir.path().join("playbooks");
        std::fs::create_dir_all(&pb).unwrap();
        std::fs::write(
            pb.join("teams.yaml"),
            format!(
                "version: 1
secrets: [SLACK_DBA, TEAMS_DBA, PD_DBA, HOOK_DBA]
teams:
  group:default/dba:
    title: Database team
    remind_after: 15m
    escalate_after: 30m
    channels:
      - slack: SLACK_DBA
      - teams: TEAMS_DBA
      - pagerduty: PD_DBA
        endpoint: {}
      - webhook: HOOK_DBA
",
                receiver.url("/pd")
            ),
        )
        .unwrap();
        std::fs::write(
            pb.join("api-down.yaml"),
            "version: 1
name: api-down
title: API down
owner: group:default/api
match: { labels: ['alertname=\"ApiDown\"'] }
steps:
  - id: look
    shell: echo connections at 99%
    report: true
",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("secrets.env"),
            format!(
                "SLACK_DBA={}\nTEAMS_DBA={}\nPD_DBA={PD_KEY}\nHOOK_DBA={}\n",
                receiver.url(&format!("/slack/{SLACK_TOKEN}")),
                receiver.url(&format!("/teams/{TEAMS_TOKEN}")),
                receiver.url(&format!("/hook/{HOOK_TOKEN}")),
            ),
        )
        .unwrap();
        Repo { dir }
    }

    fn playbooks(&self) -> String {
        self.dir.path().join("playbooks").display().to_string()
    }

    fn secrets(&self) -> String {
        self.dir.path().join("secrets.env").display().to_string()
    }
}

fn to(requests: &[Received], prefix: &str) -> Vec<serde_json::Value> {
    requests
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

fn no_secret_in(what: &str, text: &str) {
    for s in [SLACK_TOKEN, TEAMS_TOKEN, PD_KEY, HOOK_TOKEN] {
        assert!(!text.contains(s), "{what} shows a secret:\n{text}");
    }
}

/// An incident with a detection, a run of `api-down` and a hostile note.
fn incident(state: &State, repo: &Repo) {
    let alert = state.path().parent().unwrap().join("alert.json");
    std::fs::write(
        &alert,
        state::alertmanager("firing", "0001-01-01T00:00:00Z"),
    )
    .unwrap();
    state
        .irctl()
        .args(["run", "--incident", &alert.display().to_string()])
        .args(["--playbooks", &repo.playbooks()])
        .run();
    state
        .irctl()
        .args(["note", "--incident", state::INCIDENT, NOTE])
        .run();
}

fn handoff(state: &State, repo: &Repo, now: &str) -> common::Output {
    state
        .irctl()
        .env("IRCTL_NOW", now)
        .args(["handoff", "--incident", state::INCIDENT, "--to", "dba"])
        .args([
            "--message",
            "pool is fine, the *disk* is not",
            "--as",
            "ana",
        ])
        .args([
            "--playbooks",
            &repo.playbooks(),
            "--secrets-file",
            &repo.secrets(),
        ])
        .run()
}

fn remind(state: &State, repo: &Repo, now: &str) -> common::Output {
    state
        .irctl()
        .env("IRCTL_NOW", now)
        .args(["handoff", "remind"])
        .args([
            "--playbooks",
            &repo.playbooks(),
            "--secrets-file",
            &repo.secrets(),
        ])
        .run()
}

fn log(state: &State) -> String {
    let dir = state.path().join("incidents");
    let entry = std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap();
    std::fs::read_to_string(entry.path().join("timeline.jsonl")).unwrap()
}

#[test]
fn a_handoff_reaches_every_chat_channel_with_the_whole_story_and_no_secret() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let repo = Repo::new(&receiver);
    let state = State::new();
    incident(&state, &repo);
    let out = handoff(&state, &repo, "2099-01-02T00:00:00Z");
    no_secret_in("stdout", &out.stdout);
    no_secret_in("stderr", &out.stderr);
    assert!(
        out.stdout.contains("to group:default/dba"),
        "{}",
        out.stdout
    );
    let requests = receiver.requests();
    // Announced on chat and the webhook; PagerDuty is for escalation.
    assert_eq!(requests.len(), 3, "{requests:#?}");
    assert!(to(&requests, "/pd").is_empty());
    for r in &requests {
        no_secret_in(&format!("the body sent to {}", r.path), &r.body);
    }
    let slack = &to(&requests, "/slack")[0]["text"];
    let slack = slack.as_str().unwrap();
    for part in [
        "Hand-off to Database team: API is down",
        "ana hands incident",
        "## What fired",
        "`alertname=ApiDown`",
        "### Playbook api-down (succeeded)",
        "| look | succeeded |",
        "connections at 99%",
        "## Notes so far",
        "&lt;!channel&gt;",
        "&lt;http://evil|click&gt;",
        "## Still open",
        "The incident is not resolved.",
        "irctl handoff accept --incident",
        "irctl timeline --incident",
    ] {
        assert!(
            slack.contains(part),
            "Slack message lacks {part:?}:\n{slack}"
        );
    }
    assert!(!slack.contains("<!channel>"), "{slack}");
    let teams = to(&requests, "/teams")[0].to_string();
    assert!(
        teams.contains(r"\\[Open runbook\\]\\(http://evil.example\\)"),
        "{teams}"
    );
    assert!(teams.contains("Hand-off to Database team"), "{teams}");
    let hook = &to(&requests, "/hook")[0];
    assert_eq!(hook["team"], "group:default/dba");
    assert!(
        hook["text"].as_str().unwrap().contains("<!channel>"),
        "a webhook gets data, unescaped"
    );
    // The packet written for pasting, and the typed event.
    let packet = out.stdout.rsplit("packet: ").next().unwrap().trim();
    let packet = std::fs::read_to_string(packet).unwrap();
    no_secret_in("the packet", &packet);
    assert!(
        packet.contains("> pool is fine, the *disk* is not"),
        "{packet}"
    );
    let log = log(&state);
    // The note was written by someone who did not know the secret; what the hand-off records must not repeat it.
    for line in log.lines().filter(|l| l.contains("\"type\":\"handoff")) {
        no_secret_in("a hand-off event", line);
    }
    let event: serde_json::Value =
        serde_json::from_str(log.lines().find(|l| l.contains("\"handoff\"")).unwrap()).unwrap();
    assert_eq!(event["to"], "group:default/dba");
    assert_eq!(event["by"], "ana");
    assert_eq!(event["sent"].as_array().unwrap().len(), 3);
}

#[test]
fn accepting_changes_the_owner_and_reminders_go_once_per_interval() {
    let receiver = Receiver::start(vec![(202, vec![], "{}")]);
    let repo = Repo::new(&receiver);
    let state = State::new();
    incident(&state, &repo);
    handoff(&state, &repo, "2099-01-02T00:00:00Z");
    let count = || receiver.requests().len();
    assert_eq!(count(), 3);
    // Nothing is due before the interval; then one reminder, once.
    remind(&state, &repo, "2099-01-02T00:14:59Z");
    assert_eq!(count(), 3);
    let out = remind(&state, &repo, "2099-01-02T00:16:00Z");
    assert!(
        out.stdout.contains("announced again (reminder 1)"),
        "{}",
        out.stdout
    );
    assert_eq!(count(), 6);
    remind(&state, &repo, "2099-01-02T00:17:00Z");
    assert_eq!(
        count(),
        6,
        "a second cron run in the same interval sends nothing"
    );
    // Past `escalate_after`: PagerDuty is paged, once, with a stable dedup key.
    let out = remind(&state, &repo, "2099-01-02T00:31:00Z");
    assert!(
        out.stdout.contains("escalated to its pagers"),
        "{}",
        out.stdout
    );
    let pd = to(&receiver.requests(), "/pd");
    assert_eq!(pd.len(), 1);
    assert_eq!(pd[0]["routing_key"], PD_KEY);
    assert_eq!(pd[0]["event_action"], "trigger");
    assert!(
        pd[0]["dedup_key"]
            .as_str()
            .unwrap()
            .starts_with("irctl-handoff-")
    );
    no_secret_in(
        "the PagerDuty summary",
        pd[0]["payload"]["summary"].as_str().unwrap(),
    );
    remind(&state, &repo, "2099-01-02T00:31:30Z");
    remind(&state, &repo, "2099-01-02T00:31:40Z");
    assert_eq!(to(&receiver.requests(), "/pd").len(), 1);
    let before = count();
    state
        .irctl()
        .env("IRCTL_NOW", "2099-01-02T00:40:00Z")
        .args([
            "handoff",
            "accept",
            "--incident",
            state::INCIDENT,
            "--as",
            "dana",
        ])
        .stdout_contains("dana accepted incident")
        .stdout_contains("after 40m00s; group:default/dba owns it now")
        .run();
    state
        .irctl()
        .args([
            "handoff",
            "accept",
            "--incident",
            state::INCIDENT,
            "--as",
            "eve",
        ])
        .status(2)
        .stderr_contains("has no hand-off waiting for acceptance")
        .run();
    remind(&state, &repo, "2099-01-02T02:00:00Z");
    assert_eq!(count(), before, "an accepted hand-off is never reminded");
    // The record says how it was accepted.
    state
        .irctl()
        .args(["timeline", "--incident", state::INCIDENT])
        .stdout_contains(
            "dana accepted for group:default/dba (via irctl handoff accept) after 40m00s",
        )
        .run();
    let pm = state
        .irctl()
        .args(["postmortem", "--incident", state::INCIDENT])
        .run()
        .stdout;
    for part in [
        "## Ownership and hand-offs",
        "| group:default/api |",
        "| playbook api-down |",
        "| group:default/dba | 2099-01-02T00:40:00Z | hand-off accepted by dana (via irctl handoff accept) |",
        "| group:default/dba | ana | 2099-01-02T00:00:00Z | accepted | 2099-01-02T00:40:00Z by dana | 40m00s | 2, escalated |",
    ] {
        assert!(pm.contains(part), "postmortem lacks {part:?}:\n{pm}");
    }
}

#[test]
fn a_missing_secret_or_unknown_team_sends_nothing() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let repo = Repo::new(&receiver);
    let state = State::new();
    incident(&state, &repo);
    state
        .irctl()
        .args([
            "handoff",
            "--incident",
            state::INCIDENT,
            "--to",
            "group:default/dab",
        ])
        .args([
            "--playbooks",
            &repo.playbooks(),
            "--secrets-file",
            &repo.secrets(),
        ])
        .status(2)
        .stderr_contains("team `group:default/dab` is not in")
        .stderr_contains("did you mean `group:default/dba`?")
        .run();
    let partial = Path::new(&repo.secrets()).with_file_name("partial.env");
    std::fs::write(&partial, "SLACK_DBA=http://127.0.0.1:9/x-long-enough\n").unwrap();
    state
        .irctl()
        .args(["handoff", "--incident", state::INCIDENT, "--to", "dba"])
        .args([
            "--playbooks",
            &repo.playbooks(),
            "--secrets-file",
            &partial.display().to_string(),
        ])
        .status(2)
        .stderr_contains("missing secrets `TEAMS_DBA`, `PD_DBA`, `HOOK_DBA`")
        .run();
    state
        .irctl()
        .args(["handoff", "--incident", state::INCIDENT, "--to", "owner"])
        .args([
            "--playbooks",
            &repo.playbooks(),
            "--secrets-file",
            &repo.secrets(),
        ])
        .status(2)
        .stderr_contains("needs the service catalog")
        .run();
    assert!(receiver.requests().is_empty());
}

#[test]
fn a_channel_that_refuses_fails_the_handoff_but_it_is_recorded() {
    let receiver = Receiver::start(vec![(404, vec![], "no_service")]);
    let repo = Repo::new(&receiver);
    let state = State::new();
    incident(&state, &repo);
    let out = state
        .irctl()
        .args(["handoff", "--incident", state::INCIDENT, "--to", "dba"])
        .args([
            "--playbooks",
            &repo.playbooks(),
            "--secrets-file",
            &repo.secrets(),
        ])
        .status(1)
        .stderr_contains(
            "slack did not take the message: slack rejected the message (HTTP 404): no_service",
        )
        .run();
    no_secret_in("stderr", &out.stderr);
    assert!(log(&state).contains("\"type\":\"handoff\""));
}
