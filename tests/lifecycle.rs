//! Engine behaviour an on-call user relies on, through the binary: a dry
//! run of a playbook that reads earlier outputs, shell steps that stop at
//! the first failing command, and secrets set to the empty string.

mod common;

use std::path::Path;

use common::{Test, unindent};

fn playbook(body: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(body)
    )
}

fn run(yaml: &str) -> Test {
    Test::new()
        .playbook("t.yaml", yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
}

const READS_OUTPUTS: &str = r#"
steps:
  - id: lookup
    shell: |
      echo '{"owner": {"name": "ann"}, "id": 7}'
  - id: use
    needs: [lookup]
    shell: |
      echo {{ steps.lookup.json.owner.name }} {{ steps.lookup.stdout | trim }} > used
      {% for t in steps.lookup.json.items %}echo {{ t.name }}{% else %}echo no items{% endfor %}
  - id: post
    needs: [lookup]
    notify:
      console: { text: "owner {{ steps.lookup.json.owner.name }}, id {{ steps.lookup.json.id }}" }
"#;

#[test]
fn a_dry_run_shows_outputs_it_cannot_know_as_placeholders() {
    let out = run(&playbook(READS_OUTPUTS))
        .arg("--dry-run")
        .status(0)
        .stdout_contains("$ echo '<steps.lookup.json.owner.name>' '<steps.lookup.stdout>' > used\n")
        .stdout_contains("echo no items")
        .stdout_contains("owner <steps.lookup.json.owner.name>, id <steps.lookup.json.id>")
        .run();
    assert!(!out.tempdir.path().join("used").exists());
    assert!(!out.tempdir.path().join("state/runs").exists());
}

#[test]
fn an_undefined_value_at_run_time_names_the_variable_and_the_step() {
    run(&playbook(
        r#"
        steps:
          - id: lookup
            shell: |
              echo '{"a": 1}'
          - id: use
            needs: [lookup]
            shell: echo {{ steps.lookup.json.owner }}
        "#,
    ))
    .status(1)
    .stderr_contains(
        "template error in step `use`: undefined value: `steps.lookup.json.owner` is undefined",
    )
    .run();
}

#[test]
fn a_shell_step_fails_at_its_first_failing_command() {
    let out = run(&playbook(
        r#"
        steps:
          - id: multi
            shell: |
              false
              echo after-false > reached
          - id: piped
            shell: |
              false | cat
              echo after-pipe > reached-pipe
        "#,
    ))
    .status(1)
    .run();
    let dir = out.tempdir.path();
    assert!(!dir.join("reached").exists(), "a failing line was ignored");
    // Only bash has pipefail; without it a pipeline's last command decides.
    let bash = ["/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"]
        .iter()
        .any(|p| Path::new(p).is_file());
    assert_eq!(dir.join("reached-pipe").exists(), !bash);
}

#[test]
fn shell_interpreter_opts_out_of_stopping_at_the_first_failure() {
    let out = run(&playbook(
        r#"
        steps:
          - id: multi
            shell_interpreter: [sh, -c]
            shell: |
              false
              echo after-false > reached
        "#,
    ))
    .status(0)
    .run();
    assert!(out.tempdir.path().join("reached").exists());
}

#[test]
fn shell_interpreter_is_validated() {
    Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                steps:
                  - id: empty
                    shell_interpreter: []
                    shell: echo hi
                  - id: not_a_shell
                    shell_interpreter: [sh, -c]
                    command: [echo, hi]
                "#,
            ),
        )
        .args(["validate"])
        .status(1)
        .stderr_contains("step `empty`: `shell_interpreter` needs at least the program name")
        .stderr_contains("step `not_a_shell`: `shell_interpreter` applies only to `shell`")
        .run();
}

#[test]
fn a_templated_script_needs_a_posix_shell_interpreter() {
    // Values are escaped for a POSIX shell; python would read them as code.
    let out = Test::new()
        .playbook(
            "t.yaml",
            &playbook(
                r#"
                steps:
                  - id: py
                    shell_interpreter: [python3, -c]
                    shell: print("{{ incident.labels.alertname }}")
                  - id: literal_py
                    shell_interpreter: [/usr/bin/python3, -c]
                    shell: print("fine")
                  - id: dash
                    shell_interpreter: [/bin/dash, -c]
                    shell: echo "{{ incident.labels.alertname }}"
                "#,
            ),
        )
        .args(["validate"])
        .status(1)
        .stderr_contains(
            "step `py`: values in `shell` are escaped for a POSIX shell, but `shell_interpreter` runs `python3`",
        )
        .run();
    for other in ["step `literal_py`", "step `dash`"] {
        assert!(
            !out.stderr.contains(other),
            "{other} was reported:\n{}",
            out.stderr
        );
    }
}

const NEEDS_TOKEN: &str = r#"
secrets: [TOKEN]
steps:
  - id: use
    shell: echo ran > ran
"#;

#[test]
fn a_secret_set_to_the_empty_string_is_missing_in_every_form() {
    let cases: [(&str, Test); 3] = [
        (
            "`TOKEN` (empty in `IRCTL_SECRET_TOKEN`)",
            run(&playbook(NEEDS_TOKEN)).env("IRCTL_SECRET_TOKEN", ""),
        ),
        (
            "`TOKEN` (empty in `TOKEN`)",
            run(&playbook(NEEDS_TOKEN)).env("TOKEN", ""),
        ),
        (
            "`TOKEN` (empty in `secrets.env`)",
            run(&playbook(NEEDS_TOKEN))
                .file("secrets.env", "TOKEN=\"\"\n")
                .args(["--secrets-file", "secrets.env"]),
        ),
    ];
    for (named, test) in cases {
        let out = test
            .status(2)
            .stderr_contains(&format!("missing secret {named}"))
            .run();
        assert!(!out.tempdir.path().join("ran").exists());
        assert!(!out.tempdir.path().join("state/runs").exists());
    }
    // Empty is unset: the next place a secret may come from still counts.
    let out = run(&playbook(NEEDS_TOKEN))
        .env("IRCTL_SECRET_TOKEN", "")
        .env("TOKEN", "t0ken-long-enough")
        .status(0)
        .run();
    assert!(out.tempdir.path().join("ran").exists());
}
