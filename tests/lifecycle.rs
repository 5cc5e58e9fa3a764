//! Engine behaviour an on-call user relies on, through the binary: a dry
//! run of a playbook that reads earlier outputs, shell steps that stop at
//! the first failing command, and secrets set to the empty string.

mod common;

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
      {% for t in steps.lookup.json.items %}{{ t.name }}{% else %}echo no items{% endfor %}
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
