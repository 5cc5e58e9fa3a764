//! Triggers through the binary: `on_failure`, `on_success` and `always`
//! look at a step's ancestors, and every skip reason names what really
//! happened (a failure, a skip by failure, a skip by `when`, a deadline).

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{Test, timeline_events, unindent};

fn playbook(body: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(body)
    )
}

fn run(yaml: &str, status: i32) -> common::Output {
    Test::new()
        .playbook("t.yaml", yaml)
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t"])
        .status(status)
        .run()
}

/// Each step's final status and, when skipped or cancelled, its reason.
fn outcomes(dir: &Path) -> BTreeMap<String, (String, String)> {
    timeline_events(dir)
        .iter()
        .filter(|e| e["type"] == "step_finished" || e["type"] == "step_skipped")
        .map(|e| {
            (
                e["step"].as_str().unwrap_or_default().to_string(),
                (
                    e["status"].as_str().unwrap_or_default().to_string(),
                    e["reason"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

fn outcome(status: &str, reason: &str) -> (String, String) {
    (status.to_string(), reason.to_string())
}

#[test]
fn an_escalation_after_a_step_skipped_by_a_failure_pages() {
    let out = run(
        &playbook(
            r#"
            steps:
              - id: diagnose
                shell: exit 4
              - id: remediate
                needs: [diagnose]
                shell: echo remediating
              - id: page_ops
                needs: [remediate]
                trigger: on_failure
                shell: echo paged > paged
              - id: all_clear
                needs: [remediate]
                shell: echo all clear
              - id: report
                needs: [remediate]
                trigger: always
                shell: echo report
            "#,
        ),
        1,
    );
    let dir = out.tempdir.path();
    assert!(
        dir.join("paged").exists(),
        "nobody was paged:\n{}",
        out.stderr
    );
    let o = outcomes(dir);
    assert_eq!(o["diagnose"].0, "failed");
    assert_eq!(o["remediate"], outcome("skipped", "need diagnose failed"));
    assert_eq!(o["page_ops"].0, "succeeded");
    assert_eq!(
        o["all_clear"],
        outcome("skipped", "need remediate was skipped (diagnose failed)")
    );
    assert_eq!(o["report"].0, "succeeded");
    assert!(
        out.stderr
            .contains("skipped: need remediate was skipped (diagnose failed)"),
        "{}",
        out.stderr
    );
}

#[test]
fn an_escalation_after_a_direct_failure_pages_and_not_after_success() {
    let yaml = |diagnose: &str| {
        playbook(&format!(
            r#"
            steps:
              - id: diagnose
                shell: {diagnose}
              - id: page_ops
                needs: [diagnose]
                trigger: on_failure
                shell: echo paged > paged
            "#
        ))
    };
    let out = run(&yaml("exit 1"), 1);
    assert!(out.tempdir.path().join("paged").exists());
    assert_eq!(outcomes(out.tempdir.path())["page_ops"].0, "succeeded");

    let out = run(&yaml("\"true\""), 0);
    assert!(!out.tempdir.path().join("paged").exists());
    assert_eq!(
        outcomes(out.tempdir.path())["page_ops"],
        outcome("skipped", "trigger on_failure: nothing before it failed")
    );
}

#[test]
fn a_step_skipped_by_when_is_no_failure() {
    let out = run(
        &playbook(
            r#"
            steps:
              - id: diagnose
                shell: "true"
              - id: remediate
                needs: [diagnose]
                when: "false"
                shell: echo remediating
              - id: page_ops
                needs: [remediate]
                trigger: on_failure
                shell: echo paged > paged
              - id: verify
                needs: [remediate]
                shell: echo verify
              - id: report
                needs: [remediate]
                trigger: always
                shell: echo report
            "#,
        ),
        0,
    );
    let dir = out.tempdir.path();
    assert!(!dir.join("paged").exists());
    let o = outcomes(dir);
    assert_eq!(o["remediate"], outcome("skipped", "when was false: false"));
    assert_eq!(
        o["page_ops"],
        outcome("skipped", "trigger on_failure: nothing before it failed")
    );
    assert_eq!(
        o["verify"],
        outcome("skipped", "need remediate was skipped")
    );
    assert_eq!(o["report"].0, "succeeded");
}

#[test]
fn a_deadline_cancels_the_run_but_escalations_still_fire() {
    let out = run(
        &playbook(
            r#"
            timeout: 1s
            steps:
              - id: remediate
                shell: sleep 30
              - id: verify
                needs: [remediate]
                shell: echo verify
              - id: page_ops
                needs: [verify]
                trigger: on_failure
                shell: echo paged > paged
              - id: report
                needs: [remediate]
                trigger: always
                shell: echo report
            "#,
        ),
        1,
    );
    let dir = out.tempdir.path();
    assert!(
        dir.join("paged").exists(),
        "nobody was paged:\n{}",
        out.stderr
    );
    let o = outcomes(dir);
    assert_eq!(o["remediate"].0, "cancelled");
    assert_eq!(
        o["verify"],
        outcome(
            "cancelled",
            "run cancelled (run timeout of 1.0s reached) before it started"
        )
    );
    assert_eq!(o["page_ops"].0, "succeeded");
    assert_eq!(o["report"].0, "succeeded");
    let ev = timeline_events(dir);
    assert_eq!(ev.last().map(|e| &e["status"]), Some(&"cancelled".into()));
}
