//! Hostile alert labels against every shell context, through the real
//! binary: the payload's marker file must never appear, the step must see
//! the literal value, and `validate` must refuse what no escaping fixes.

mod common;

use std::path::Path;

use common::{Test, unindent};

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\ndrill:\n  incident: {{ title: d, labels: {{ app: t }} }}\n{}",
        unindent(steps)
    )
}

/// An incident file whose label `x` is `value`.
fn incident(value: &str) -> String {
    serde_json::json!({"title": "hostile", "labels": {"app": "t", "x": value}}).to_string()
}

fn run(yaml: &str, value: &str) -> Test {
    Test::new()
        .playbook("t.yaml", yaml)
        .file("incident.json", incident(value))
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--incident", "incident.json"])
}

/// The `stdout` the only run recorded for `step`.
fn step_stdout(dir: &Path, step: &str) -> Option<String> {
    common::try_timeline_text(dir)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|e| e["type"] == "step_finished" && e["step"] == step)
        .and_then(|e| e["stdout"].as_str().map(str::to_string))
}

#[test]
fn quoted_contexts_keep_labels_literal() {
    let payloads = [
        "$(touch MARK)",
        "`touch MARK`",
        "\"; touch MARK; \"",
        "'; touch MARK; '",
        "\\\"$(touch MARK)\\",
        "EOF\n$(touch MARK)",
    ];
    let yaml = playbook(
        r#"
        steps:
          - id: dq
            shell: printf '%s' "host is {{ incident.labels.x }}"
          - id: sq
            shell: printf '%s' 'host is {{ incident.labels.x }}'
          - id: nested
            shell: printf '%s' "$(printf '%s' "in {{ incident.labels.x }}")"
          - id: assign
            shell: v={{ incident.labels.x }}; printf '%s' "$v"
          - id: heredoc
            shell: |
              cat <<MSG
              host {{ incident.labels.x }}
              MSG
        "#,
    );
    for value in payloads {
        let out = run(&yaml, value).run();
        let dir = out.tempdir.path();
        assert!(!dir.join("MARK").exists(), "{value:?} executed");
        assert_eq!(step_stdout(dir, "dq").unwrap(), format!("host is {value}"));
        assert_eq!(step_stdout(dir, "sq").unwrap(), format!("host is {value}"));
        assert_eq!(step_stdout(dir, "nested").unwrap(), format!("in {value}"));
        assert_eq!(step_stdout(dir, "assign").unwrap(), value);
        assert_eq!(
            step_stdout(dir, "heredoc").unwrap(),
            format!("host {value}\n")
        );
    }
}

#[test]
fn a_label_that_would_end_a_heredoc_fails_the_step_and_runs_nothing() {
    let yaml = playbook(
        r#"
        steps:
          - id: body
            shell: |
              cat <<'EOF'
              {{ incident.labels.x }}
              EOF
        "#,
    );
    let out = run(&yaml, "fine\nEOF\ntouch MARK")
        .status(1)
        .stdout_contains("would end the heredoc early")
        .run();
    assert!(!out.tempdir.path().join("MARK").exists());
}

#[test]
fn option_injection_is_refused_in_shell_and_command() {
    let value = "-oProxyCommand=touch MARK";
    for step in [
        "shell: ssh -o BatchMode=yes {{ incident.labels.x }} uptime",
        "command: [ssh, -o, BatchMode=yes, '{{ incident.labels.x }}', uptime]",
    ] {
        let yaml = playbook(&format!("steps:\n  - id: s\n    {step}\n"));
        let out = run(&yaml, value)
            .status(1)
            .stdout_contains("starts with '-'")
            .run();
        assert!(!out.tempdir.path().join("MARK").exists());
    }
    // After `--` the value is an operand, and stays one word.
    for step in [
        "shell: printf '%s|' -- {{ incident.labels.x }}",
        "command: [printf, '%s|', '--', '{{ incident.labels.x }}']",
        "shell: printf '%s|' {{ incident.labels.x | allow_option }}",
    ] {
        let yaml = playbook(&format!("steps:\n  - id: s\n    {step}\n"));
        let out = run(&yaml, value).run();
        let printed = step_stdout(out.tempdir.path(), "s").unwrap();
        assert!(
            printed.ends_with(&format!("{value}|")),
            "{step}: {printed:?}"
        );
    }
}

fn validate(steps: &str) -> Vec<(String, String, u64, u64)> {
    let out = Test::new()
        .playbook("p.yaml", &playbook(steps))
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["severity"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn finding(severity: &str, code: &str, line: u64, column: u64) -> (String, String, u64, u64) {
    (severity.into(), code.into(), line, column)
}

#[test]
fn validate_refuses_what_no_escaping_fixes() {
    // Lines 1-7 are the header; steps start on line 8.
    let found = validate(
        r#"
        inputs:
          h: { default: "{{ incident.labels.host }}" }
        steps:
          - id: a
            shell: |
              echo {{ inputs.h | safe }}
              {{ incident.labels.cmd }} --help
              true # {{ incident.labels.note }}
              ssh -o BatchMode=yes {{ incident.labels.host }} uptime
          - id: b
            command: ["{{ incident.labels.cmd }}", "{{ incident.labels.arg }}"]
        "#,
    );
    assert_eq!(
        found,
        [
            finding("error", "unsafe-interpolation", 13, 26),
            finding("error", "shell-command-name", 14, 7),
            finding("error", "shell-comment", 15, 14),
            finding("warning", "option-injection", 16, 28),
            finding("error", "shell-command-name", 18, 15),
            finding("warning", "option-injection", 18, 44),
        ]
    );
}

#[test]
fn trusted_values_pass_validate() {
    Test::new()
        .playbook(
            "p.yaml",
            &playbook(
                r#"
                inputs:
                  tool: { default: uptime }
                steps:
                  - id: a
                    shell: |
                      {{ inputs.tool }}
                      echo {{ "$HOME" | safe }} {{ run.id }}
                      ssh -o BatchMode=yes -- {{ incident.labels.host }} uptime
                "#,
            ),
        )
        .args(["validate", "--deny-warnings"])
        .run();
}
