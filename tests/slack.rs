//! Slack interactivity through the real binary, with no real Slack: a run
//! `irctl serve` started from an Alertmanager delivery waits at its
//! `confirm` step; its approval request reaches a Slack-like receiver on
//! 127.0.0.1 with Approve and Deny buttons; the test posts the
//! `block_actions` payload Slack would post for a click, signed as Slack
//! documents (`v0=HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)`),
//! and the run goes on with the Slack user in its timeline. Replays,
//! altered bodies and wrong secrets are refused; a second click is
//! answered politely; a hand-off's Accept button records the acceptance;
//! and `irctl approve` from another process answers a serve-started run.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/serve.rs"]
mod serve;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use receiver::Receiver;
use serve::{Reply, Server, alertmanager, bearer};
use sha2::Sha256;
use wait::wait_until;

const TOKEN: &str = "t0ken-alpha-0001";
const SIGNING: &str = "slack-signing-secret-new-1";
const SIGNING_OLD: &str = "slack-signing-secret-old-2";
const STARTS: &str = "2024-01-01T10:00:00Z";
const PATH: &str = "/hooks/slack/interactivity";

/// An `auto` playbook for alert `A` whose `restart` step waits for approval,
/// asked for on the receiver's Slack webhook.
fn playbook(slack: &str) -> String {
    format!(
        r#"version: 1
name: restart-api
title: Restart the API
auto: true
match:
  labels: ['alertname="A"']
approvals:
  notify:
    slack:
      webhook: "{slack}"
      text: "*{{{{ playbook.title }}}}* needs you"
steps:
  - id: look
    shell: "true"
  - id: restart
    needs: [look]
    confirm: "Restart the API <!channel>?"
    confirm_timeout: 5m
    shell: echo restarted
"#
    )
}

/// A folder with the playbook, a teams file reaching `dba` on the
/// receiver's Slack, and serve's secrets (two Slack signing secrets).
fn setup(slack: &Receiver) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("irctl-slack")
        .tempdir()
        .unwrap();
    let pb = dir.path().join("playbooks");
    std::fs::create_dir_all(&pb).unwrap();
    std::fs::write(
        pb.join("restart.yaml"),
        playbook(&slack.url("/services/T/B/X")),
    )
    .unwrap();
    std::fs::write(
        pb.join("teams.yaml"),
        "version: 1\nsecrets: [SLACK_DBA]\nteams:\n  group:default/dba:\n    title: Database team\n    channels:\n      - slack: SLACK_DBA\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("secrets.env"),
        format!(
            "SERVE_BEARER_TOKEN={TOKEN}\nSERVE_SLACK_SIGNING_SECRET={SIGNING}\nSERVE_SLACK_SIGNING_SECRET_2={SIGNING_OLD}\nSLACK_DBA={}\n",
            slack.url("/services/T/DBA/Y")
        ),
    )
    .unwrap();
    dir
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec!["--playbooks", "playbooks", "--secrets-file", "secrets.env"];
    args.extend_from_slice(extra);
    Server::start(dir, &args, &[])
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Slack's signature of `body` at `at` with `secret`.
fn signature(secret: &str, at: i64, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{at}:").as_bytes());
    mac.update(body);
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Posts `body` as Slack does, with `signature` and timestamp `at`.
fn post_signed(server: &Server, body: &[u8], at: i64, signature: String) -> Reply {
    server.post(
        PATH,
        &[
            (
                "Content-Type",
                "application/x-www-form-urlencoded".to_string(),
            ),
            ("X-Slack-Request-Timestamp", at.to_string()),
            ("X-Slack-Signature", signature),
        ],
        body,
    )
}

/// Posts a click, signed with `secret` now.
fn click(server: &Server, secret: &str, body: &[u8]) -> Reply {
    let at = now();
    post_signed(server, body, at, signature(secret, at, body))
}

/// The form body Slack posts when `user` clicks `button` (an element of
/// the message as irctl sent it): a `block_actions` payload as Slack's
/// reference shows it.
fn block_actions(button: &serde_json::Value, user: &str, username: &str) -> Vec<u8> {
    block_actions_to(
        button,
        user,
        username,
        "https://hooks.slack.com/actions/T0001/1/abc",
    )
}

/// [`block_actions`] with Slack's `response_url` for the message.
fn block_actions_to(
    button: &serde_json::Value,
    user: &str,
    username: &str,
    response_url: &str,
) -> Vec<u8> {
    let payload = serde_json::json!({
        "type": "block_actions",
        "user": { "id": user, "username": username, "name": username, "team_id": "T0001" },
        "api_app_id": "A0001",
        "token": "deprecated-verification-token",
        "container": { "type": "message", "message_ts": "1700000000.000100", "channel_id": "C0001", "is_ephemeral": false },
        "trigger_id": "1234.5678.abcdef",
        "team": { "id": "T0001", "domain": "example" },
        "channel": { "id": "C0001", "name": "incidents" },
        "message": { "type": "message", "ts": "1700000000.000100", "text": "…" },
        "response_url": response_url,
        "actions": [{
            "type": "button",
            "block_id": "b1",
            "action_id": button["action_id"],
            "text": button["text"],
            "value": button["value"],
            "style": button["style"],
            "action_ts": "1700000001.000200"
        }]
    });
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
        .into_bytes()
}

/// The Slack message the receiver got at `path`, once it got one.
fn message(slack: &Receiver, path: &str) -> serde_json::Value {
    let body = wait_until(
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(50),
        &format!("no message reached {path}"),
        || {
            slack
                .requests()
                .into_iter()
                .find(|r| r.path == path)
                .map(|r| r.body)
        },
    );
    serde_json::from_str(&body).expect("JSON body")
}

/// The button `action_id` of a Slack message.
fn button(msg: &serde_json::Value, action_id: &str) -> serde_json::Value {
    msg["blocks"]
        .as_array()
        .expect("blocks")
        .iter()
        .filter(|b| b["type"] == "actions")
        .flat_map(|b| b["elements"].as_array().cloned().unwrap_or_default())
        .find(|e| e["action_id"] == action_id)
        .unwrap_or_else(|| panic!("no `{action_id}` button in {msg:#}"))
}

/// The ephemeral text of a 200 answer to a click.
fn said(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.body);
    let json = reply.json();
    assert_eq!(json["response_type"], "ephemeral", "{json}");
    assert_eq!(json["replace_original"], false, "{json}");
    json["text"].as_str().expect("text").to_string()
}

/// Delivers alert `A` and returns the approval request's Slack message.
fn start_waiting_run(server: &Server, slack: &Receiver) -> serde_json::Value {
    let r = server.post(
        "/hooks/alertmanager",
        &bearer(TOKEN),
        alertmanager("A", "firing", STARTS).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    message(slack, "/services/T/B/X")
}

/// The run's summary and events from `/api/runs/ID`.
fn run_record(server: &Server, run: &str) -> serde_json::Value {
    let r = server.get(&format!("/api/runs/{run}"), &bearer(TOKEN));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// Waits (bounded) until run `run` has ended; its record.
fn finished(server: &Server, run: &str) -> serde_json::Value {
    wait_until(
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(100),
        &format!("run {run} never ended:\n{}", server.stderr()),
        || {
            let rec = run_record(server, run);
            let ended = rec["events"]
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["type"] == "run_finished"));
            ended.then_some(rec)
        },
    )
}

fn events<'a>(rec: &'a serde_json::Value, kind: &str) -> Vec<&'a serde_json::Value> {
    rec["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

fn step_status(rec: &serde_json::Value, step: &str) -> String {
    events(rec, "step_finished")
        .into_iter()
        .find(|e| e["step"] == step)
        .map(|e| e["status"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// `irctl` in `dir` with a clean environment.
fn irctl(dir: &Path) -> Command {
    let mut cmd = common::irctl_in(dir);
    cmd.env("NO_COLOR", "1");
    cmd
}

fn printed(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The run id an Approve button names.
fn run_of(button: &serde_json::Value) -> String {
    let value: serde_json::Value = serde_json::from_str(button["value"].as_str().unwrap()).unwrap();
    value["run"].as_str().unwrap().to_string()
}

#[test]
fn a_signed_click_approves_the_step_of_a_run_serve_started() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack);
    let server = start(dir.path(), &[]);
    let msg = start_waiting_run(&server, &slack);

    // The text keeps the exact commands; the blocks repeat it, escaped,
    // and add the buttons, whose values name the request and nothing secret.
    let text = msg["text"].as_str().unwrap();
    assert!(text.contains("\nApprove: irctl approve "), "{text}");
    assert!(text.contains("Restart the API &lt;!channel&gt;?"), "{text}");
    let sections: String = msg["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "section")
        .map(|b| b["text"]["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(sections, text);
    assert!(!msg.to_string().contains("<!channel>"), "{msg}");
    let approve = button(&msg, "irctl_approve");
    let deny = button(&msg, "irctl_deny");
    assert_eq!(approve["style"], "primary");
    assert_eq!(deny["style"], "danger");
    for secret in [TOKEN, SIGNING, SIGNING_OLD] {
        assert!(!msg.to_string().contains(secret), "{msg}");
    }
    let value: serde_json::Value =
        serde_json::from_str(approve["value"].as_str().unwrap()).unwrap();
    assert_eq!(value["step"], "restart");
    assert!(value["nonce"].as_str().unwrap().len() >= 8, "{value}");
    let run = run_of(&approve);

    // Refused before anything is parsed or recorded.
    let body = block_actions(&approve, "U0APPROVER", "ana");
    let stale = now() - 6 * 60;
    let r = post_signed(&server, &body, stale, signature(SIGNING, stale, &body));
    assert_eq!(r.status, 401, "a replay older than 5 minutes: {}", r.body);
    let at = now();
    let mut altered = body.clone();
    altered.extend_from_slice(b"&x=1");
    let r = post_signed(&server, &altered, at, signature(SIGNING, at, &body));
    assert_eq!(r.status, 401, "an altered body: {}", r.body);
    let r = click(&server, "not-the-signing-secret", &body);
    assert_eq!(r.status, 401, "a wrong secret: {}", r.body);
    let r = server.post(
        PATH,
        &[(
            "Content-Type",
            "application/x-www-form-urlencoded".to_string(),
        )],
        &body,
    );
    assert_eq!(r.status, 401, "no signature: {}", r.body);
    let r = click(&server, SIGNING, b"payload=%7Bnot%20json");
    assert_eq!(r.status, 400, "malformed: {}", r.body);
    let r = click(&server, SIGNING, b"nothing=here");
    assert_eq!(r.status, 400, "no payload: {}", r.body);

    // A button of another request (an earlier attempt's nonce) answers nothing.
    let mut old = approve.clone();
    old["value"] =
        serde_json::json!({ "run": run, "step": "restart", "nonce": "00000000deadbeef" })
            .to_string()
            .into();
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&old, "U0APPROVER", "ana"),
    ));
    assert!(t.contains("no longer waits for this request"), "{t}");
    // A button naming a run that is not there, or a hostile one, is explained.
    let mut unknown = approve.clone();
    unknown["value"] = serde_json::json!({ "run": "../../etc", "step": "restart", "nonce": "ab" })
        .to_string()
        .into();
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&unknown, "U0APPROVER", "ana"),
    ));
    assert!(t.contains("names no run"), "{t}");
    let mut foreign = approve.clone();
    foreign["action_id"] = "someone_elses_button".into();
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&foreign, "U0APPROVER", "ana"),
    ));
    assert!(t.contains("not one of irctl's"), "{t}");
    assert!(
        events(&run_record(&server, &run), "confirmation").is_empty(),
        "nothing refused was recorded"
    );

    // The rotated (older) secret is still accepted; the click approves.
    let r = click(&server, SIGNING_OLD, &body);
    let t = said(&r);
    assert!(t.starts_with("You approved step `restart` of run"), "{t}");
    assert!(t.contains("Restart the API &lt;!channel&gt;?"), "{t}");

    // A second click (Deny, by someone else) is refused politely.
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&deny, "U0OTHER", "bob"),
    ));
    assert!(
        t.contains("was already answered: approved by slack:U0APPROVER (ana) (slack)"),
        "{t}"
    );

    let rec = finished(&server, &run);
    assert_eq!(rec["summary"]["status"], "succeeded", "{rec:#}");
    assert_eq!(step_status(&rec, "restart"), "succeeded");
    let confirmations = events(&rec, "confirmation");
    assert_eq!(confirmations.len(), 1, "{rec:#}");
    assert_eq!(confirmations[0]["answer"], "yes");
    assert_eq!(confirmations[0]["by"], "slack:U0APPROVER (ana)");
    assert_eq!(confirmations[0]["via"], "slack");
    assert!(
        server
            .stderr()
            .contains("slack: slack:U0APPROVER (ana) approved step restart")
    );

    // The timeline, read by a person, names the Slack user.
    let out = irctl(dir.path())
        .args(["timeline", &run, "--state-dir", "state"])
        .output()
        .unwrap();
    assert!(
        printed(&out).contains("slack:U0APPROVER (ana)"),
        "{}",
        printed(&out)
    );
    // Clicking once the run is over still gets a polite answer.
    let t = said(&click(&server, SIGNING, &body));
    assert!(t.contains("was already answered"), "{t}");
}

#[test]
fn deny_declines_the_step_and_only_named_approvers_count() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack);
    let server = start(dir.path(), &["--slack-approver", "U0BOSS"]);
    let msg = start_waiting_run(&server, &slack);
    let approve = button(&msg, "irctl_approve");
    let deny = button(&msg, "irctl_deny");
    let run = run_of(&approve);

    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&approve, "U0INTERN", "eve"),
    ));
    assert!(t.contains("You may not answer approvals"), "{t}");
    assert!(t.contains("still waits"), "{t}");
    assert!(events(&run_record(&server, &run), "confirmation").is_empty());

    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&deny, "U0BOSS", "carol"),
    ));
    assert!(t.starts_with("You declined step `restart`"), "{t}");
    let rec = finished(&server, &run);
    assert_eq!(rec["summary"]["status"], "failed", "{rec:#}");
    let confirmation = events(&rec, "confirmation")[0];
    assert_eq!(confirmation["answer"], "no");
    assert_eq!(confirmation["by"], "slack:U0BOSS (carol)");
    assert_eq!(confirmation["via"], "slack");
    assert_eq!(step_status(&rec, "restart"), "failed");
    assert!(
        !events(&rec, "step_started")
            .iter()
            .any(|e| e["step"] == "restart"),
        "a declined step never starts"
    );
}

#[test]
fn irctl_approve_from_another_process_answers_a_run_serve_started() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack);
    let server = start(dir.path(), &[]);
    let msg = start_waiting_run(&server, &slack);
    let text = msg["text"].as_str().unwrap();
    let command = text
        .lines()
        .find_map(|l| l.strip_prefix("Approve: "))
        .expect("the approve command");
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("irctl"));
    let out = irctl(dir.path())
        .args(words)
        .env("IRCTL_ACTOR", "dave")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", printed(&out));
    let run = run_of(&button(&msg, "irctl_approve"));
    let rec = finished(&server, &run);
    assert_eq!(rec["summary"]["status"], "succeeded", "{rec:#}");
    let confirmation = events(&rec, "confirmation")[0];
    assert_eq!(confirmation["by"], "dave");
    assert_eq!(confirmation["via"], "irctl approve");
    // The button, clicked afterwards, says who answered.
    let body = block_actions(&button(&msg, "irctl_approve"), "U0LATE", "fay");
    let t = said(&click(&server, SIGNING, &body));
    assert!(
        t.contains("already answered: approved by dave (irctl approve)"),
        "{t}"
    );
}

#[test]
fn the_accept_button_of_a_handoff_records_the_slack_user() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack);
    let alert = dir.path().join("alert.json");
    std::fs::write(&alert, alertmanager("A", "firing", STARTS)).unwrap();
    let cli = |args: &[&str]| {
        let out = irctl(dir.path())
            .args(args)
            .args(["--state-dir", "state"])
            .env("IRCTL_ACTOR", "ana")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", printed(&out));
        printed(&out)
    };
    // A recorded incident (the run stops at its approval at once: no terminal, no wait).
    irctl(dir.path())
        .args([
            "run",
            "--incident",
            "alert.json",
            "--playbooks",
            "playbooks",
        ])
        .args(["--state-dir", "state"])
        .output()
        .unwrap();
    let incident = "{}:{alertname=\"A\"}";
    cli(&[
        "handoff",
        "--incident",
        incident,
        "--to",
        "dba",
        "--playbooks",
        "playbooks",
        "--secrets-file",
        "secrets.env",
    ]);
    let msg = message(&slack, "/services/T/DBA/Y");
    let text = msg["text"].as_str().unwrap();
    assert!(text.contains("irctl handoff accept --incident"), "{text}");
    let accept = button(&msg, "irctl_handoff_accept");
    let value: serde_json::Value = serde_json::from_str(accept["value"].as_str().unwrap()).unwrap();
    assert_eq!(value["incident"], incident);
    assert_eq!(value["team"], "group:default/dba");

    let origin = slack.url("");
    let server = start(
        dir.path(),
        &[
            "--slack-approver",
            "U0SOMEONE",
            "--slack-response-origin",
            &origin,
        ],
    );
    let body = block_actions_to(&accept, "U0DBA", "dana", &slack.url("/actions/T0001/9/acc"));
    let t = said(&click(&server, SIGNING, &body));
    assert!(t.starts_with("You accepted incident"), "{t}");
    assert!(t.contains("group:default/dba"), "{t}");
    // The channel's message now says who accepted, and when.
    let update = message(&slack, "/actions/T0001/9/acc");
    assert_eq!(update["replace_original"], true, "{update}");
    let text = update["text"].as_str().unwrap();
    assert!(
        text.starts_with("*Accepted* by slack:U0DBA (dana) at 20"),
        "{text}"
    );
    assert!(text.contains("is owned by group:default/dba now"), "{text}");
    let log = irctl::record::incident_log::read(&dir.path().join("state"), incident).unwrap();
    let accepted = log
        .events
        .iter()
        .find_map(|e| match &e.payload {
            irctl::timeline::Payload::HandoffAccepted(a) => Some(a.clone()),
            _ => None,
        })
        .expect("a handoff_accepted event");
    assert_eq!(accepted.by, "slack:U0DBA (dana)", "{accepted:?}");
    assert_eq!(accepted.via.as_deref(), Some("slack"), "{accepted:?}");
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&accept, "U0DBA2", "eli"),
    ));
    assert!(
        t.contains("was already accepted by slack:U0DBA (dana)"),
        "{t}"
    );

    let log = cli(&["timeline", "--incident", incident]);
    assert!(
        log.contains("slack:U0DBA (dana) accepted for group:default/dba (via slack)"),
        "{log}"
    );
    let out = irctl(dir.path())
        .args(["handoff", "accept", "--incident", incident, "--as", "gus"])
        .args(["--state-dir", "state"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", printed(&out));
    assert!(
        printed(&out).contains("no hand-off waiting"),
        "{}",
        printed(&out)
    );

    // A button of a hand-off that is not in the record is explained.
    let mut other = accept.clone();
    other["value"] = serde_json::json!({ "incident": incident, "team": "group:default/dba", "at": "2001-01-01T00:00:00.000Z" })
        .to_string()
        .into();
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions(&other, "U0DBA", "dana"),
    ));
    assert!(t.contains("is not in the record"), "{t}");
}

/// Delivers alert `alertname` (serve's playbook matches every `A…`) and
/// returns the Approve button of the `n`th approval request the receiver got.
fn nth_waiting_run(
    server: &Server,
    slack: &Receiver,
    alertname: &str,
    n: usize,
) -> serde_json::Value {
    let r = server.post(
        "/hooks/alertmanager",
        &bearer(TOKEN),
        alertmanager(alertname, "firing", STARTS).as_bytes(),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let body = wait_until(
        Instant::now() + Duration::from_secs(60),
        Duration::from_millis(50),
        &format!("no approval request for {alertname}:\n{}", server.stderr()),
        || {
            slack
                .requests()
                .into_iter()
                .filter(|r| r.path == "/services/T/B/X")
                .nth(n)
                .map(|r| r.body)
        },
    );
    let msg: serde_json::Value = serde_json::from_str(&body).unwrap();
    button(&msg, "irctl_approve")
}

/// [`setup`], with the playbook matching every alert whose name starts with `A`.
fn setup_many(slack: &Receiver) -> tempfile::TempDir {
    let dir = setup(slack);
    let file = dir.path().join("playbooks").join("restart.yaml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(r#"alertname="A""#, r#"alertname=~"A.*""#);
    std::fs::write(file, text).unwrap();
    dir
}

#[test]
fn a_recorded_click_replaces_the_original_message_with_who_and_when() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let dir = setup(&slack);
    let origin = slack.url("");
    let server = start(dir.path(), &["--slack-response-origin", &origin]);
    let msg = start_waiting_run(&server, &slack);
    let approve = button(&msg, "irctl_approve");
    let run = run_of(&approve);
    let url = slack.url("/actions/T0001/1/upd");
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions_to(&approve, "U0APPROVER", "ana <!here>", &url),
    ));
    assert!(t.starts_with("You approved"), "{t}");
    let update = message(&slack, "/actions/T0001/1/upd");
    assert_eq!(update["replace_original"], true, "{update}");
    let text = update["text"].as_str().unwrap();
    assert!(
        text.starts_with("*Approved* by slack:U0APPROVER (ana &lt;!here&gt;) at 20"),
        "escaped, with the time: {text}"
    );
    assert!(
        text.contains(&format!("step `restart` of run `{run}`")),
        "{text}"
    );
    assert!(text.contains("Restart the API &lt;!channel&gt;?"), "{text}");
    for secret in [TOKEN, SIGNING, SIGNING_OLD] {
        assert!(!text.contains(secret), "{text}");
    }
    // A click that records nothing (a second one) updates nothing.
    let t = said(&click(
        &server,
        SIGNING,
        &block_actions_to(&approve, "U0OTHER", "bob", &url),
    ));
    assert!(t.contains("already answered"), "{t}");
    let rec = finished(&server, &run);
    assert_eq!(rec["summary"]["status"], "succeeded", "{rec:#}");
    std::thread::sleep(Duration::from_millis(500));
    let updates = slack
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/actions/"))
        .count();
    assert_eq!(updates, 1, "one update for one recorded answer");
}

#[test]
fn a_hostile_response_url_is_never_followed_and_never_holds_the_click() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let elsewhere = Receiver::start(vec![(200, vec![], "stolen")]);
    let redirecting = Receiver::start(vec![(
        302,
        vec![("Location", "http://127.0.0.1:9/steal")],
        "",
    )]);
    // Accepts connections and never answers.
    let slow = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let slow_addr = slow.local_addr().unwrap();
    let dir = setup_many(&slack);
    let (slow_origin, redirect_origin) = (format!("http://{slow_addr}"), redirecting.url(""));
    let server = start(
        dir.path(),
        &[
            "--slack-response-origin",
            &slow_origin,
            "--slack-response-origin",
            &redirect_origin,
        ],
    );
    let approve_at = |alert: &str, n: usize, url: &str| {
        let approve = nth_waiting_run(&server, &slack, alert, n);
        let started = Instant::now();
        let t = said(&click(
            &server,
            SIGNING,
            &block_actions_to(&approve, "U0APPROVER", "ana", url),
        ));
        assert!(t.starts_with("You approved"), "{t}");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "answered within Slack's 3 seconds: {:?}",
            started.elapsed()
        );
        let rec = finished(&server, &run_of(&approve));
        assert_eq!(rec["summary"]["status"], "succeeded", "{rec:#}");
        assert_eq!(events(&rec, "confirmation")[0]["via"], "slack");
    };

    // A host that is not Slack's (nor an allowed stand-in) is never contacted.
    approve_at("A1", 0, &elsewhere.url("/actions/T/1/x"));
    wait_until(
        Instant::now() + Duration::from_secs(10),
        Duration::from_millis(50),
        "the refusal is logged",
        || {
            server
                .stderr()
                .contains(&format!(
                    "the message is not updated: `response_url` points to `{}`",
                    elsewhere.addr
                ))
                .then_some(())
        },
    );
    assert!(
        !server.stderr().contains("/actions/T/1/x"),
        "the URL is never logged"
    );

    // A redirect is not followed.
    approve_at("A2", 1, &redirecting.url("/actions/T/2/x"));
    wait_until(
        Instant::now() + Duration::from_secs(10),
        Duration::from_millis(50),
        "the redirect is logged",
        || {
            server
                .stderr()
                .contains("refused the message update: HTTP 302")
                .then_some(())
        },
    );

    // A server that never answers is given up on, after the click was answered.
    approve_at("A3", 2, &format!("http://{slow_addr}/actions/T/3/x"));
    wait_until(
        Instant::now() + Duration::from_secs(20),
        Duration::from_millis(100),
        "the slow update times out",
        || server.stderr().contains("timed out after").then_some(()),
    );
    assert!(
        elsewhere.requests().is_empty(),
        "{:?}",
        elsewhere.requests()
    );
    assert_eq!(redirecting.requests().len(), 1);
    drop(slow);
}
