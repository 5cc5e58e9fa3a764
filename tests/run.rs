//! `irctl run` end to end: real child processes, real HTTP receivers on
//! 127.0.0.1, real signals, and the timeline a responder would read.

mod common;
#[path = "support/receiver.rs"]
mod receiver;
#[path = "support/wait.rs"]
mod wait;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Test, timeline_text, try_timeline_text, unindent};
use receiver::Receiver;
use wait::wait_until;

/// The events of the only run under `state`.
fn events(dir: &Path) -> Vec<serde_json::Value> {
    timeline_text(dir)
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line parses"))
        .collect()
}

/// Starts `irctl run --label app=t` in `dir` in the background, output discarded.
fn spawn_run(dir: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(dir)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start irctl")
}

fn of_type<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    events.iter().filter(|e| e["type"] == kind).collect()
}

fn finished<'a>(events: &'a [serde_json::Value], step: &str) -> &'a serde_json::Value {
    events
        .iter()
        .find(|e| e["type"] == "step_finished" && e["step"] == step)
        .unwrap_or_else(|| panic!("no step_finished for {step}"))
}

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\ndrill:\n  incident: {{ title: d, labels: {{ app: t }} }}\n{}",
        unindent(steps)
    )
}

fn run_test(yaml: &str) -> Test {
    Test::new()
        .playbook("t.yaml", yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
}

#[test]
fn bundled_playbook_runs_end_to_end_from_the_readme() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Test::new()
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--playbooks", &format!("{root}/playbooks")])
        .args([
            "--incident",
            &format!("{root}/examples/incidents/disk-filling.json"),
        ])
        .stdout_contains("succeeded")
        .stdout_contains("timeline: ")
        .run();
    assert!(
        out.stdout.starts_with("run "),
        "run id first:\n{}",
        out.stdout
    );
    // The routing playbook `route-owner` runs first, then the remediation
    // playbook; with no channel secret set both still succeed.
    let runs = out.tempdir.path().join("state/runs");
    let mut started: Vec<(String, String)> = std::fs::read_dir(&runs)
        .unwrap()
        .map(|e| {
            let text = std::fs::read_to_string(e.unwrap().path().join("timeline.jsonl")).unwrap();
            let ev: Vec<serde_json::Value> = text
                .lines()
                .map(|l| serde_json::from_str(l).expect("every line parses"))
                .collect();
            assert_eq!(ev[0]["type"], "run_started");
            assert_eq!(ev.last().unwrap()["status"], "succeeded", "{text}");
            (
                ev[0]["ts"].as_str().unwrap().to_string(),
                ev[0]["playbook"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    started.sort();
    let order: Vec<&str> = started.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(order, ["route-owner", "disk-filling-up"]);
}

#[test]
fn incident_labels_never_execute_in_any_step_kind() {
    let recv = Receiver::start(vec![(200, vec![], "ok")]);
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("pwned");
    let m = marker.display().to_string();
    let hostile = [
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("; touch {m}"),
        format!("x'; touch {m}; echo '"),
        format!("a\ntouch {m}"),
        "{{ 7 * 7 }}".to_string(),
    ];
    for evil in &hostile {
        let yaml = playbook(&format!(
            r#"
            steps:
              - id: sh
                shell: echo {{{{ incident.labels.evil }}}} > out.txt
              - id: argv
                command: [echo, "{{{{ incident.labels.evil }}}}"]
              - id: http
                http:
                  method: POST
                  url: "{url}?q={{{{ incident.labels.evil }}}}"
                  json: {{ label: "{{{{ incident.labels.evil }}}}", text: "said {{{{ incident.labels.evil }}}}" }}
              - id: hook
                notify: {{ webhook: {{ url: "{url}", json: {{ evil: "{{{{ incident.labels.evil }}}}" }} }} }}
            "#,
            url = recv.url("/hook")
        ));
        let out = run_test(&yaml)
            .arg("--label")
            .arg(format!("evil={evil}"))
            .run();
        assert!(!marker.exists(), "label {evil:?} executed");
        let echoed = std::fs::read_to_string(out.tempdir.path().join("out.txt")).unwrap();
        assert_eq!(echoed, format!("{evil}\n"), "shell got the label verbatim");
        let ev = events(out.tempdir.path());
        assert_eq!(finished(&ev, "argv")["stdout"], format!("{evil}\n"));
    }
    for r in recv
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/hook?"))
    {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert!(
            hostile.iter().any(|h| body["label"] == h.as_str()),
            "JSON value intact: {}",
            r.body
        );
        assert!(
            !r.path.contains(' ') && !r.path.contains('`'),
            "URL encoded: {}",
            r.path
        );
    }
}

#[test]
fn secrets_are_redacted_in_every_sink_and_passed_by_environment() {
    let recv = Receiver::start(vec![(500, vec![], "upstream said s3cr3t-v4lue")]);
    let yaml = playbook(&format!(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: show
            shell: echo token={{{{ secrets.API_TOKEN }}}}; echo "$IRCTL_SECRET_API_TOKEN" | base64; echo err {{{{ secrets.API_TOKEN }}}} >&2
          - id: call
            http:
              url: "{url}/x?t={{{{ secrets.API_TOKEN }}}}"
              headers: {{ authorization: "Bearer {{{{ secrets.API_TOKEN }}}}" }}
          - id: say
            needs: [show]
            notify: {{ console: {{ text: "the token is {{{{ secrets.API_TOKEN }}}} / {{{{ steps.show.stdout }}}}" }} }}
        "#,
        url = recv.url("")
    ));
    let out = run_test(&yaml)
        .arg("--verbose")
        .env("IRCTL_SECRET_API_TOKEN", "s3cr3t-v4lue")
        .status(1)
        .run();
    let dir = out.tempdir.path();
    let timeline = timeline_text(dir);
    for (sink, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("timeline", &timeline),
    ] {
        assert!(
            !text.contains("s3cr3t-v4lue"),
            "secret leaked in {sink}:\n{text}"
        );
        assert!(
            !text.contains("czNjcjN0LXY0bHVl"),
            "base64 secret leaked in {sink}"
        );
    }
    assert!(timeline.contains("token=***"));
    // The server really got the secret (it was used, just never shown).
    let reqs = recv.requests();
    assert_eq!(reqs[0].headers["authorization"], "Bearer s3cr3t-v4lue");
    // In the shell script the secret is an environment reference, not the value.
    let ev = events(dir);
    let started = ev
        .iter()
        .find(|e| e["type"] == "step_started" && e["step"] == "show")
        .unwrap();
    assert!(
        started["action"]["shell"]
            .as_str()
            .unwrap()
            .contains("$IRCTL_SECRET_API_TOKEN")
    );
}

#[test]
fn missing_secret_is_exit_2_before_anything_runs() {
    let out = run_test(&playbook(
        r#"
        secrets: [NOPE_TOKEN]
        steps:
          - id: a
            shell: echo {{ secrets.NOPE_TOKEN }} > ran.txt
        "#,
    ))
    .status(2)
    .stderr_contains("missing secret `NOPE_TOKEN`")
    .run();
    assert!(!out.tempdir.path().join("ran.txt").exists());
    assert!(!out.tempdir.path().join("state/runs").exists());
}

#[test]
fn triggers_skip_reasons_and_continue_on_error() {
    let out = run_test(&playbook(
        r#"
        steps:
          - id: check
            shell: exit 3
          - id: fix
            needs: [check]
            shell: echo fix
          - id: escalate
            needs: [check]
            trigger: on_failure
            shell: echo "escalating after {{ steps.check.exit_code }}"
          - id: cleanup
            needs: [fix]
            trigger: always
            shell: echo cleanup
          - id: gated
            needs: [escalate]
            trigger: on_failure
            when: steps.escalate.exit_code != 0
            shell: echo never
          - id: optional
            shell: exit 1
            continue_on_error: true
          - id: after_optional
            needs: [optional]
            shell: echo still runs
        "#,
    ))
    .status(1)
    .run();
    let ev = events(out.tempdir.path());
    let skipped: BTreeMap<String, String> = of_type(&ev, "step_skipped")
        .iter()
        .map(|e| {
            (
                e["step"].as_str().unwrap().to_string(),
                e["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(skipped["fix"], "need check failed");
    assert_eq!(
        skipped["gated"],
        "when was false: steps.escalate.exit_code != 0"
    );
    assert_eq!(finished(&ev, "escalate")["stdout"], "escalating after 3\n");
    assert_eq!(finished(&ev, "cleanup")["status"], "succeeded");
    assert_eq!(finished(&ev, "optional")["continue_on_error"], true);
    assert_eq!(finished(&ev, "after_optional")["status"], "succeeded");
    assert_eq!(ev.last().unwrap()["status"], "failed");
}

#[test]
fn retries_back_off_and_record_every_attempt() {
    let out = run_test(&playbook(
        r#"
        steps:
          - id: flaky
            shell: n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; [ $n -ge 3 ]
            retry: { attempts: 4, backoff: 50ms, max_backoff: 200ms }
        "#,
    ))
    .run();
    let ev = events(out.tempdir.path());
    let retries = of_type(&ev, "step_retrying");
    assert_eq!(retries.len(), 2);
    assert!(retries[0]["delay_ms"].as_u64().unwrap() <= 50);
    assert!(retries[1]["delay_ms"].as_u64().unwrap() >= 80);
    assert_eq!(finished(&ev, "flaky")["attempts"], 3);
    assert_eq!(finished(&ev, "flaky")["status"], "succeeded");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("survived");
    let out = run_test(&playbook(&format!(
        r#"
        steps:
          - id: slow
            shell: (sleep 2; touch {m}) & sh -c 'sleep 2; touch {m}' & sleep 30
            timeout: 300ms
        "#,
        m = marker.display()
    )))
    .status(1)
    .run();
    let ev = events(out.tempdir.path());
    assert_eq!(finished(&ev, "slow")["status"], "timed_out");
    assert_eq!(finished(&ev, "slow")["error"], "timed out after 300ms");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "a grandchild survived the timeout");
}

#[test]
fn sigint_cancels_records_and_leaves_no_orphan() {
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("orphan");
    let test = run_test(&playbook(&format!(
        r#"
        steps:
          - id: long
            shell: (sleep 3; touch {m}) & sleep 60
          - id: next
            needs: [long]
            shell: echo next
        "#,
        m = marker.display()
    )));
    let dir = test.path().to_path_buf();
    let mut child = spawn_run(&dir);
    let start = Instant::now();
    wait_until(
        start + Duration::from_secs(20),
        Duration::from_millis(50),
        "step never started",
        || try_timeline_text(&dir).filter(|t| t.contains("step_started")),
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = wait_until(
        start + Duration::from_secs(30),
        Duration::from_millis(50),
        "irctl did not stop on SIGINT",
        || child.try_wait().unwrap(),
    );
    assert_eq!(status.code(), Some(130));
    let ev = events(&dir);
    assert_eq!(of_type(&ev, "run_cancelled")[0]["signal"], "SIGINT");
    assert_eq!(finished(&ev, "long")["status"], "cancelled");
    assert_eq!(ev.last().unwrap()["status"], "cancelled");
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!marker.exists(), "a process outlived the cancelled run");
    drop(test);
}

#[test]
fn confirm_without_a_tty_fails_closed_and_yes_approves() {
    let yaml = playbook(
        r#"
        steps:
          - id: restart
            confirm: "Restart it?"
            shell: touch restarted
        "#,
    );
    let out = run_test(&yaml).status(1).run();
    assert!(!out.tempdir.path().join("restarted").exists());
    let ev = events(out.tempdir.path());
    assert_eq!(
        finished(&ev, "restart")["error"],
        "confirmation required: no terminal to ask and `--yes` not given"
    );

    let out = run_test(&yaml)
        .arg("--yes")
        .env("IRCTL_ACTOR", "alice")
        .run();
    assert!(out.tempdir.path().join("restarted").exists());
    let ev = events(out.tempdir.path());
    let c = of_type(&ev, "confirmation")[0];
    assert_eq!(
        (c["answer"].as_str(), c["by"].as_str(), c["via"].as_str()),
        (Some("yes"), Some("alice"), Some("--yes"))
    );
}

#[test]
fn notifications_send_each_services_documented_payload() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let teams = Receiver::start(vec![(202, vec![], "")]);
    let pd = Receiver::start(vec![(
        202,
        vec![("content-type", "application/json")],
        r#"{"status":"success","message":"Event processed","dedup_key":"k1"}"#,
    )]);
    let hook = Receiver::start(vec![(204, vec![], "")]);
    let yaml = playbook(&format!(
        r#"
        secrets: [PD_KEY]
        steps:
          - id: slack
            notify: {{ slack: {{ webhook: "{s}", text: "disk full on {{{{ incident.labels.app }}}}" }} }}
          - id: teams
            notify: {{ teams: {{ webhook: "{t}", title: "Incident", text: "disk full" }} }}
          - id: page
            notify:
              pagerduty: {{ routing_key: "{{{{ secrets.PD_KEY }}}}", dedup_key: "k1", summary: "disk full", severity: critical, endpoint: "{p}" }}
          - id: hook
            notify: {{ webhook: {{ url: "{h}", json: {{ n: 1, who: "{{{{ incident.labels.app }}}}" }}, hmac_secret: "k3y" }} }}
        "#,
        s = slack.url("/services/T/B/X"),
        t = teams.url("/workflows/1"),
        p = pd.url("/v2/enqueue"),
        h = hook.url("/irctl")
    ));
    run_test(&yaml).env("PD_KEY", "routing-key-123").run();
    let body = |r: &Receiver| -> serde_json::Value {
        serde_json::from_str(&r.requests()[0].body).unwrap()
    };
    assert_eq!(body(&slack), serde_json::json!({"text": "disk full on t"}));
    let card = body(&teams);
    assert_eq!(
        card["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["attachments"][0]["content"]["type"], "AdaptiveCard");
    let event = body(&pd);
    assert_eq!(event["routing_key"], "routing-key-123");
    assert_eq!(event["event_action"], "trigger");
    assert_eq!(event["dedup_key"], "k1");
    assert_eq!(event["payload"]["severity"], "critical");
    assert_eq!(event["payload"]["summary"], "disk full");
    let req = &hook.requests()[0];
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&req.body).unwrap(),
        serde_json::json!({"n": 1, "who": "t"})
    );
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(req.body.as_bytes());
    assert_eq!(
        req.headers["x-irctl-signature"],
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
}

#[test]
fn service_errors_are_explained_and_5xx_is_retried_with_retry_after() {
    let slack = Receiver::start(vec![(404, vec![], "no_service")]);
    let api = Receiver::start(vec![
        (503, vec![("retry-after", "1")], "busy"),
        (
            200,
            vec![("content-type", "application/json")],
            r#"{"ok":true,"n":3}"#,
        ),
    ]);
    let out = run_test(&playbook(&format!(
        r#"
        steps:
          - id: slack
            notify: {{ slack: {{ webhook: "{s}", text: "hi" }} }}
          - id: api
            http: {{ url: "{a}/api" }}
            retry: {{ attempts: 3, backoff: 10ms }}
          - id: use
            needs: [api]
            shell: echo {{{{ steps.api.json.n }}}} {{{{ steps.api.http_status }}}}
        "#,
        s = slack.url("/hook"),
        a = api.url("")
    )))
    .status(1)
    .run();
    let ev = events(out.tempdir.path());
    assert_eq!(
        finished(&ev, "slack")["error"],
        "slack rejected the message (HTTP 404): no_service \u{2014} the webhook was revoked or is wrong"
    );
    let retry = of_type(&ev, "step_retrying")[0];
    assert_eq!(retry["http_status"], 503);
    assert!(
        retry["delay_ms"].as_u64().unwrap() >= 1000,
        "Retry-After honoured"
    );
    assert_eq!(finished(&ev, "use")["stdout"], "3 200\n");
}

#[test]
fn unreachable_host_is_a_clear_step_failure() {
    // Port 9 on loopback: nothing listens there.
    let out = run_test(&playbook(
        r#"
        steps:
          - id: call
            http: { url: "http://127.0.0.1:9/health" }
        "#,
    ))
    .status(1)
    .run();
    let ev = events(out.tempdir.path());
    let err = finished(&ev, "call")["error"].as_str().unwrap().to_string();
    assert!(err.starts_with("cannot connect to 127.0.0.1:9"), "{err}");
}

#[test]
fn dry_run_prints_the_plan_and_executes_nothing() {
    let out = run_test(&playbook(
        r#"
        inputs:
          host: { default: "{{ incident.labels.app }}-db" }
        steps:
          - id: check
            shell: touch ran; echo {{ inputs.host }}
          - id: fix
            needs: [check]
            when: steps.check.exit_code != 0
            confirm: "Fix {{ inputs.host }}?"
            command: [systemctl, restart, "{{ steps.check.stdout }}"]
        "#,
    ))
    .arg("--dry-run")
    .stdout_contains("level 0:\n  check\n      $ touch ran; echo t-db\n")
    .stdout_contains("level 1:\n  fix (needs check; on_success)\n      when: steps.check.exit_code != 0\n      confirm: Fix t-db?\n      $ systemctl restart '<steps.check.stdout>'\n")
    .run();
    assert!(!out.tempdir.path().join("ran").exists());
    assert!(!out.tempdir.path().join("state/runs").exists());
}

#[test]
fn second_run_for_the_same_incident_and_playbook_is_refused() {
    let test = run_test(&playbook(
        r#"
        steps:
          - id: hold
            shell: sleep 5
        "#,
    ));
    let dir = test.path().to_path_buf();
    let mut first = spawn_run(&dir);
    let start = Instant::now();
    wait_until(
        start + Duration::from_secs(20),
        Duration::from_millis(50),
        "the first run never started",
        || {
            let runs = std::fs::read_dir(dir.join("state/runs"))
                .map(|d| d.count())
                .unwrap_or(0);
            (dir.join("state/locks").exists() && runs > 0).then_some(())
        },
    );
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_irctl"))
        .current_dir(&dir)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let holder = std::fs::read_dir(dir.join("state/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains(&format!("another run ({})", holder.to_string_lossy())),
        "{stderr}"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = first.wait();
    drop(test);
}

#[test]
fn no_match_and_ties_are_not_guessed() {
    let other = "version: 1\nname: u\ntitle: U\nmatch:\n  labels: ['app=\"t\"']\ndrill:\n  incident: { title: d, labels: { app: t } }\nsteps:\n  - id: a\n    shell: \"true\"\n";
    Test::new()
        .playbook(
            "t.yaml",
            &playbook("steps:\n  - id: a\n    shell: \"true\"\n"),
        )
        .playbook("u.yaml", other)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .status(1)
        .stderr_contains("2 playbooks tie")
        .stderr_contains("t, u")
        .run();
    Test::new()
        .playbook(
            "t.yaml",
            &playbook("steps:\n  - id: a\n    shell: \"true\"\n"),
        )
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=other"])
        .status(1)
        .stderr_contains("no playbook matches")
        .run();
    // Named: runs anyway, with the mismatch recorded.
    let out = Test::new()
        .playbook(
            "t.yaml",
            &playbook("steps:\n  - id: a\n    shell: \"true\"\n"),
        )
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "t", "--label", "app=other"])
        .stderr_contains("does not match this incident")
        .run();
    let ev = events(out.tempdir.path());
    assert_eq!(of_type(&ev, "warning").len(), 1);
}

#[test]
fn pagerduty_routing_keys_in_the_payload_never_reach_the_timeline() {
    let event: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!(
            "{}/examples/incidents/pagerduty-events-v2-trigger.json",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
    )
    .unwrap();
    let key = event["routing_key"].as_str().unwrap().to_string();
    let wrapped = serde_json::json!({
        "specversion": "1.0", "id": "ce-1", "source": "/pd", "type": "pagerduty.event",
        "datacontenttype": "application/json", "data": event,
    });
    for payload in [event.clone(), wrapped] {
        let out = Test::new()
            .playbook(
                "t.yaml",
                &playbook("steps:\n  - id: show\n    shell: echo {{ incident.raw | tojson }}\n"),
            )
            .file("incident.json", payload.to_string())
            .env("IRCTL_STATE_DIR", "state")
            .args(["run", "t", "--incident", "incident.json"])
            .run();
        let timeline = timeline_text(out.tempdir.path());
        assert!(!timeline.contains(&key), "routing key in the timeline");
        assert!(!out.stdout.contains(&key) && !out.stderr.contains(&key));
        assert!(timeline.contains("\"routing_key\":\"***\""));
    }
}

/// A run-level `timeout` cancels the run and is the work failing (exit 1),
/// not an interruption (130 is for Ctrl-C and SIGTERM).
#[test]
fn a_run_timeout_cancels_the_run_and_exits_1() {
    let start = Instant::now();
    let out = Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                timeout: 1s
                steps:
                  - id: hang
                    shell: sleep 5
                "#,
            ),
        )
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .status(1)
        .stdout_contains("cancelled")
        .run();
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "not cancelled at 1s"
    );
    let ev = events(out.tempdir.path());
    let cancelled = ev.iter().find(|e| e["type"] == "run_cancelled").unwrap();
    assert_eq!(cancelled["signal"], "run timeout of 1.0s reached");
}

/// A step is handed the outputs its templates name; one that reads `steps`
/// as a whole still sees every finished step.
#[test]
fn steps_see_the_outputs_they_read_by_name_or_as_a_whole() {
    let out = Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                steps:
                  - id: a
                    shell: echo from-a
                  - id: b
                    shell: echo from-b
                  - id: by_name
                    needs: [a, b]
                    shell: echo "got {{ steps.b.stdout | trim }}"
                  - id: whole
                    needs: [by_name]
                    shell: echo "n={{ steps | length }}"
                "#,
            ),
        )
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .run();
    let ev = events(out.tempdir.path());
    let stdout = |id: &str| {
        ev.iter()
            .find(|e| e["type"] == "step_finished" && e["step"] == id)
            .map(|e| e["stdout"].clone())
            .unwrap()
    };
    assert_eq!(stdout("by_name"), "got from-b\n");
    assert_eq!(stdout("whole"), "n=3\n");
}
