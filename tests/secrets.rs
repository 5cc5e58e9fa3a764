//! Secrets through the binary: every form and every cut is masked in the
//! terminal and the record, weak values are refused before a run, a payload
//! cannot add redaction patterns, and `validate` points at secrets in argv.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use common::{Test, timeline_text, unindent};
use receiver::Receiver;

const TOKEN: &str = "s3cr3t-v4lue-xyz";

const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n-----END PRIVATE KEY-----";

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

fn assert_absent(sinks: &[(&str, &str)], fragments: &[&str]) {
    for (sink, text) in sinks {
        for fragment in fragments {
            assert!(
                !text.contains(fragment),
                "`{fragment}` leaked in {sink}:\n{text}"
            );
        }
    }
}

#[test]
fn basic_auth_hex_and_multi_line_secrets_are_masked_in_verbose_output_and_the_record() {
    let out = run_test(&playbook(
        r#"
        secrets: [API_TOKEN, TLS_KEY]
        steps:
          - id: show
            shell: |
              printf 'deploy:%s' "$IRCTL_SECRET_API_TOKEN" | base64
              printf '%s' "$IRCTL_SECRET_API_TOKEN" | od -An -tx1 | tr -d ' \n'; echo
              printf '%s' "$IRCTL_SECRET_API_TOKEN" | od -An -tx1 | tr -d ' \n' | tr a-f A-F; echo
              printf '%s\n' "$IRCTL_SECRET_TLS_KEY"
              echo done
        "#,
    ))
    .arg("--verbose")
    .env("IRCTL_SECRET_API_TOKEN", TOKEN)
    .env("IRCTL_SECRET_TLS_KEY", PEM)
    .run();
    let timeline = timeline_text(out.tempdir.path());
    let sinks = [
        ("stdout", out.stdout.as_str()),
        ("stderr", out.stderr.as_str()),
        ("timeline", timeline.as_str()),
    ];
    assert_absent(
        &sinks,
        &[
            // base64("deploy:s3cr3t-v4lue-xyz"): the secret starts mid-group.
            "MzY3IzdC12NGx1ZS14",
            "7333637233742d76346c75652d78797a",
            "7333637233742D76346C75652D78797A",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
            "BKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj",
            "BEGIN PRIVATE KEY",
        ],
    );
    assert!(out.stderr.contains("show: done"), "{}", out.stderr);
    assert!(timeline.contains("done"));
}

#[test]
fn output_cut_by_the_cap_keeps_no_part_of_a_secret() {
    // The secret straddles the 1 MiB cap: 6 of its bytes fall inside.
    let out = run_test(&playbook(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: big
            shell: head -c 1048570 /dev/zero | tr '\0' x; printf '%s\n' "$IRCTL_SECRET_API_TOKEN"
        "#,
    ))
    .arg("--verbose")
    .env("IRCTL_SECRET_API_TOKEN", TOKEN)
    .run();
    let timeline = timeline_text(out.tempdir.path());
    assert_absent(
        &[("stderr", &out.stderr), ("timeline", &timeline)],
        &["xs3cr3", "v4lue"],
    );
    assert!(timeline.contains("x\\n[irctl: output truncated at 1 MiB]"));
}

#[test]
fn an_http_error_snippet_never_ends_inside_a_secret() {
    // The error message quotes the first 200 characters of the body: the
    // secret starts at 195.
    let body = format!("{}{TOKEN} trailing", "x".repeat(195));
    let recv = Receiver::start(vec![(500, vec![], Box::leak(body.into_boxed_str()))]);
    let out = run_test(&playbook(&format!(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: call
            http:
              url: "{url}/x"
              headers: {{ authorization: "Bearer {{{{ secrets.API_TOKEN }}}}" }}
        "#,
        url = recv.url("")
    )))
    .env("IRCTL_SECRET_API_TOKEN", TOKEN)
    .status(1)
    .run();
    let timeline = timeline_text(out.tempdir.path());
    assert_absent(
        &[
            ("stdout", &out.stdout),
            ("stderr", &out.stderr),
            ("timeline", &timeline),
        ],
        &["xs3cr3", "xs3c", "v4lue"],
    );
    assert!(timeline.contains("answered HTTP 500"), "{timeline}");
}

#[test]
fn short_or_common_secret_values_are_refused_before_the_run() {
    let yaml = playbook(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: a
            shell: echo hi > ran.txt
        "#,
    );
    for (value, why) in [
        ("passed", "secret `API_TOKEN` is a common word"),
        ("PASSWORD", "secret `API_TOKEN` is a common word"),
        (
            "abc1234",
            "secret `API_TOKEN` is shorter than 8 characters (7)",
        ),
    ] {
        let out = run_test(&yaml)
            .env("IRCTL_SECRET_API_TOKEN", value)
            .status(2)
            .stderr_contains(why)
            .run();
        assert!(!out.tempdir.path().join("ran.txt").exists());
        assert!(!out.tempdir.path().join("state/runs").exists());
    }
    // The same rule for a secrets file.
    run_test(&yaml)
        .file("s.env", "API_TOKEN=true\n")
        .args(["--secrets-file", "s.env"])
        .status(2)
        .stderr_contains("secret `API_TOKEN` is a common word")
        .run();
}

#[test]
fn only_a_pagerduty_events_own_routing_key_is_masked() {
    let key = "e93facc04764012d7bfb002500d5d1a6";
    let incident = serde_json::json!({
        "routing_key": key,
        "event_action": "trigger",
        "payload": {
            "summary": "disk full", "source": "db-1", "severity": "error",
            "custom_details": {
                "app": "t",
                "a": {"routing_key": "failed"},
                "b": [{"routing_key": "status"}],
                "c": {"routing_key": "ESCALATE"}
            }
        }
    });
    let out = Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                steps:
                  - id: say
                    shell: echo "failed status ESCALATE {{ incident.raw.routing_key }}"
                "#,
            ),
        )
        .file("pd.json", incident.to_string())
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--incident", "pd.json", "--verbose"])
        .run();
    let timeline = timeline_text(out.tempdir.path());
    assert!(!timeline.contains(key), "{timeline}");
    assert!(!out.stderr.contains(key), "{}", out.stderr);
    assert!(
        out.stderr.contains("failed status ESCALATE ***"),
        "{}",
        out.stderr
    );
    assert!(
        timeline.contains("failed status ESCALATE ***"),
        "{timeline}"
    );
    assert!(timeline.contains(r#""routing_key":"failed""#), "{timeline}");
    assert!(timeline.contains(r#""routing_key":"status""#), "{timeline}");
}

#[test]
fn validate_warns_where_a_secret_lands_in_argv() {
    Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                secrets: [API_TOKEN]
                steps:
                  - id: call
                    command: [curl, -H, "Authorization: Bearer {{ secrets.API_TOKEN }}", https://example.com]
                  - id: fine
                    shell: 'curl -H "Authorization: Bearer {{ secrets.API_TOKEN }}" https://example.com'
                "#,
            ),
        )
        .args(["validate", "--color", "never"])
        .stderr_contains("warning[secret-in-argv]: secret `API_TOKEN` is passed on the command line")
        .stderr_contains("--> playbooks/t.yaml:11:51")
        .stderr_contains("help: pass it through the environment instead: the step's process gets it as `IRCTL_SECRET_API_TOKEN`")
        .run();
}

/// The confirmation prompt is read by a person at a terminal, so a secret in
/// the question shows redacted there. `script` gives irctl a real TTY.
#[test]
fn the_confirmation_prompt_shows_a_secret_redacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = playbook(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: rotate
            confirm: "Rotate the key {{ secrets.API_TOKEN }} now?"
            shell: echo rotated > rotated
        "#,
    );
    std::fs::create_dir_all(dir.path().join("playbooks")).expect("playbooks dir");
    std::fs::write(dir.path().join("playbooks/t.yaml"), yaml).expect("write playbook");
    // Declines: nothing may run.
    let Some(screen) = common::on_terminal(
        dir.path(),
        "run --label app=t --state-dir state",
        &[("IRCTL_SECRET_API_TOKEN", TOKEN)],
        b"n\n",
    ) else {
        return;
    };
    assert!(
        screen.contains("Rotate the key *** now?"),
        "the prompt is not shown redacted:\n{screen}"
    );
    assert!(
        !screen.contains(TOKEN),
        "the secret reached the terminal:\n{screen}"
    );
    assert!(!dir.path().join("rotated").exists(), "a declined step ran");
}
