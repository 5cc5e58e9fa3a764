//! Text from outside never drives the terminal: a label, an annotation, a
//! step's output or a notification carrying `\r`, escape sequences, other
//! control characters or bidi overrides shows them as `\u{…}` escapes
//! wherever irctl prints it — the `confirm` question, progress and
//! `--verbose` lines, console notifications, `match`, the run summary and
//! the timeline and runs tables — while irctl's own colours still work.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use common::{Output, Test, unindent};
use receiver::Receiver;

/// Erases the line, returns to its start and clears the screen: what a
/// hostile label would use to overwrite what irctl shows.
const HOSTILE: &str = "ok\r\u{1b}[2K\u{1b}[2J\u{7}\u{9b}31m\u{202e}evil";
/// The same, as irctl shows it.
const SHOWN: &str = "ok\\u{d}\\u{1b}[2K\\u{1b}[2J\\u{7}\\u{9b}31m\\u{202e}evil";

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\ndrill:\n  incident: {{ title: d, labels: {{ app: t }} }}\n{}",
        unindent(steps)
    )
}

/// Nothing that acts on a terminal, apart from irctl's own colour codes
/// (`ESC [ digits ; m`) when `colours` is true.
fn assert_inert(what: &str, text: &str, colours: bool) {
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }) {
        let tail = &rest[i..];
        let sgr = tail.strip_prefix("\u{1b}[").and_then(|t| {
            let end = t.find(|c: char| !c.is_ascii_digit() && c != ';')?;
            (t.as_bytes()[end] == b'm').then_some(end + 3)
        });
        match sgr {
            Some(len) if colours => rest = &tail[len..],
            _ => panic!("{what} carries {:?}:\n{text}", &tail[..tail.len().min(12)]),
        }
    }
}

fn hostile_run(steps: &str) -> Test {
    Test::new()
        .playbook("t.yaml", &playbook(steps))
        .env("IRCTL_STATE_DIR", "state")
        .args(["run", "--label", "app=t", "--label"])
        .arg(format!("x={HOSTILE}"))
}

#[test]
fn verbose_output_and_progress_show_escapes_instead_of_acting() {
    let out = hostile_run(
        r#"
        steps:
          - id: show
            shell: |
              printf '%s\n' {{ incident.labels.x }}
              printf 'fake\r\033[2K  \342\234\224 deploy succeeded\n'
          - id: say
            needs: [show]
            notify: { console: { text: "label {{ incident.labels.x }}" } }
        "#,
    )
    .args(["--verbose", "--color", "always"])
    .run();
    assert_inert("stderr", &out.stderr, true);
    assert_inert("stdout", &out.stdout, false);
    // The label in step output, in the console notification and a fake
    // `✔` line: all shown, none acting.
    assert!(
        out.stderr.contains(&format!("show: {SHOWN}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("show: fake\\u{d}\\u{1b}[2K  \u{2714} deploy succeeded"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!("label {SHOWN}")),
        "{}",
        out.stderr
    );
    // irctl's own colours are still there.
    assert!(
        out.stderr.contains("\u{1b}[32m\u{2714}\u{1b}[0m"),
        "{}",
        out.stderr
    );
}

#[test]
fn the_summary_and_progress_show_hostile_text_inert() {
    // A server's error body becomes the failure reason in the summary
    // table; the label shows in the progress line of the step it starts.
    let api = Receiver::start(vec![(500, vec![], HOSTILE)]);
    let out = hostile_run(&format!(
        r#"
        steps:
          - id: bad
            http: {{ url: "{url}" }}
          - id: echo
            shell: "echo {{{{ incident.labels.x }}}} >&2; exit 3"
        "#,
        url = api.url("/api"),
    ))
    .status(1)
    .run();
    assert_inert("stdout", &out.stdout, false);
    assert_inert("stderr", &out.stderr, false);
    assert!(
        out.stdout
            .contains(&format!("HTTP 500 (expected 2xx): {SHOWN}")),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!("echo '{SHOWN}'")),
        "{}",
        out.stderr
    );
}

#[test]
fn match_shows_a_hostile_title_and_labels_inert() {
    let payload = serde_json::json!({
        "receiver": "irctl",
        "status": "firing",
        "alerts": [{
            "status": "firing",
            "labels": { "alertname": HOSTILE, "app": "t" },
            "annotations": { "summary": HOSTILE },
            "startsAt": "2024-05-14T11:02:31Z",
        }],
    });
    let run = |format: &str| -> Output {
        Test::new()
            .playbook(
                "t.yaml",
                &playbook("steps:\n  - id: a\n    shell: \"true\"\n"),
            )
            .file("alert.json", payload.to_string())
            .args(["match", "--incident", "alert.json", "--format", format])
            .run()
    };
    let out = run("table");
    assert_inert("match", &out.stdout, false);
    assert!(out.stdout.contains(SHOWN), "{}", out.stdout);
    // JSON stays JSON, with the same strings in it, and nothing raw.
    let out = run("json");
    assert_inert("match --format json", &out.stdout, false);
    assert_eq!(out.json()["incident"]["labels"]["alertname"], HOSTILE);
}

#[test]
fn timeline_and_runs_tables_show_hostile_text_inert() {
    let out = hostile_run(
        r#"
        steps:
          - id: show
            shell: "printf '%s\n' {{ incident.labels.x }}"
        "#,
    )
    .args(["--title"])
    .arg(format!("title {HOSTILE}"))
    .run();
    let state = out.tempdir.path().join("state");
    let run_id = out
        .stdout
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("run "))
        .expect("run id")
        .to_string();
    let tl = Test::new()
        .env("IRCTL_STATE_DIR", state.to_str().expect("utf-8"))
        .args(["timeline", &run_id])
        .run();
    assert_inert("timeline", &tl.stdout, false);
    assert!(tl.stdout.contains("\\u{1b}[2K"), "{}", tl.stdout);
    let tl = Test::new()
        .env("IRCTL_STATE_DIR", state.to_str().expect("utf-8"))
        .args(["timeline", &run_id, "--format", "json"])
        .run();
    assert_inert("timeline --format json", &tl.stdout, false);
    assert!(
        tl.json().to_string().contains("\\u001b[2K"),
        "{}",
        tl.stdout
    );
    let runs = Test::new()
        .env("IRCTL_STATE_DIR", state.to_str().expect("utf-8"))
        .args(["runs"])
        .run();
    assert_inert("runs", &runs.stdout, false);
}

#[test]
fn dry_run_plan_shows_a_hostile_confirm_question_inert() {
    let out = hostile_run(
        r#"
        steps:
          - id: restart
            confirm: "Restart {{ incident.labels.x }}?"
            shell: "true"
        "#,
    )
    .arg("--dry-run")
    .run();
    assert_inert("plan", &out.stdout, false);
    assert!(
        out.stdout.contains(&format!("confirm: Restart {SHOWN}?")),
        "{}",
        out.stdout
    );
}

/// The real question, asked on a real terminal (`script` gives irctl one):
/// a label that returns to the start of the line and erases it cannot
/// replace the question with its own.
#[test]
fn the_confirm_prompt_cannot_be_overwritten_by_a_label() {
    let dir = tempfile::tempdir().expect("temp dir");
    let yaml = playbook(
        r#"
        steps:
          - id: wipe
            confirm: "Wipe {{ incident.labels.x }}?"
            shell: echo wiped > wiped
        "#,
    );
    std::fs::create_dir_all(dir.path().join("playbooks")).expect("playbooks dir");
    std::fs::write(dir.path().join("playbooks/t.yaml"), yaml).expect("write playbook");
    std::fs::write(
        dir.path().join("alert.json"),
        serde_json::json!({
            "title": "t",
            "labels": { "app": "t", "x": "db-1\r\u{1b}[2K? [wipe] Show the dashboard?" },
        })
        .to_string(),
    )
    .expect("write incident");
    let Some(screen) = common::on_terminal(
        dir.path(),
        "run --incident alert.json --state-dir state --color never",
        &[],
        b"n\n",
    ) else {
        return;
    };
    assert!(
        screen.contains("? [wipe] Wipe db-1\\u{d}\\u{1b}[2K? [wipe] Show the dashboard?? [y/N]"),
        "the real question is not shown whole:\n{screen}"
    );
    assert!(!screen.contains("\u{1b}[2K"), "{screen}");
    assert!(!dir.path().join("wiped").exists(), "a declined step ran");
}
