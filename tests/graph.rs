//! `irctl graph`: the bundled playbooks' DAGs as Mermaid and DOT
//! (snapshots), hostile labels that must stay text in both, a failed then
//! resumed run coloured by its combined outcome, and the postmortem's
//! Mermaid blocks. Every Mermaid text passes our grammar check
//! (`support/mermaid.rs`, tested here too) and every DOT text `dot -Tsvg`
//! when Graphviz is installed.

mod common;
#[path = "support/mermaid.rs"]
mod mermaid;
#[path = "support/state.rs"]
mod state;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Test, unindent};
use state::State;

const BUNDLED: [&str; 6] = [
    "disk-filling-up",
    "http-5xx-rate-high",
    "pg-connections-saturated",
    "pod-crash-looping",
    "scrape-target-down",
    "tls-cert-expiring",
];

fn bundled_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks")
}

/// Whether Graphviz's `dot` runs here; says so when it does not.
fn have_dot() -> bool {
    let ok = Command::new("dot")
        .arg("-V")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!(
            "SKIPPED: `dot` (Debian package graphviz) is not installed; DOT output not checked with Graphviz"
        );
    }
    ok
}

/// Asserts `dot -Tsvg` accepts `text`.
#[track_caller]
fn dot_accepts(text: &str) {
    use std::io::Write as _;
    let mut child = Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run dot");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to dot");
    let out = child.wait_with_output().expect("dot output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("syntax error"),
        "dot rejected:\n{text}\n{stderr}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("<svg"));
}

#[test]
fn bundled_playbooks_as_mermaid_and_dot() {
    let dot = have_dot();
    for name in BUNDLED {
        let mermaid_out = Test::new()
            .args(["graph", name, "--playbooks"])
            .arg(bundled_dir())
            .run()
            .stdout;
        mermaid::check(&mermaid_out).unwrap_or_else(|e| panic!("{name}: {e}\n{mermaid_out}"));
        insta::assert_snapshot!(format!("{name}_mermaid"), mermaid_out);
        let dot_out = Test::new()
            .args(["graph", name, "--format", "dot", "--playbooks"])
            .arg(bundled_dir())
            .run()
            .stdout;
        insta::assert_snapshot!(format!("{name}_dot"), dot_out);
        if dot {
            dot_accepts(&dot_out);
        }
    }
}

#[test]
fn a_playbook_file_path_works_and_an_unknown_name_is_an_error() {
    let path = bundled_dir().join("disk-filling-up.yaml");
    Test::new()
        .arg("graph")
        .arg(&path)
        .stdout_contains("flowchart TD")
        .stdout_contains("n7{{\"cleanup<br>shell, confirm, simulated in drill\"}}")
        .run();
    Test::new()
        .args(["graph", "disk-filing-up", "--playbooks"])
        .arg(bundled_dir())
        .status(2)
        .stderr_contains("no playbook named `disk-filing-up`; did you mean `disk-filling-up`?")
        .run();
}

/// `when` expressions are free text in other teams' playbooks: everything
/// Mermaid or DOT could read as syntax or markup.
const HOSTILE: &str = r#"
    version: 1
    name: hostile
    title: Hostile
    steps:
      - id: a
        shell: "true"
        when: 'incident.title != "\"]; click n0 call alert(1); n9[\"x" and "<script>alert(1)</script>" != "<img src=x onerror=alert(1)>"'
      - id: b
        needs: [a]
        trigger: on_failure
        when: "'-->' != '#quot; `md` **b** [l](http://x) \\\\ \\\" \\N \\l }; n0 -> n1 [label=<<b>x</b>>]'"
        notify: { console: { text: hi } }
      - id: c
        needs: [a, b]
        trigger: always
        shell: "true"
    on_resolved:
      - id: a
        when: "'%%{init: {\"securityLevel\": \"loose\"}}%%' != ''"
        shell: "true"
    "#;

#[test]
fn hostile_labels_stay_text_in_mermaid_and_dot() {
    let out = Test::new()
        .playbook("h.yaml", &unindent(HOSTILE))
        .args(["graph", "hostile"])
        .run()
        .stdout;
    mermaid::check(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    for bad in ["<script", "<img", "%%{", "`", "](", "-->'"] {
        assert!(!out.contains(bad), "`{bad}` in:\n{out}");
    }
    assert!(out.contains("subgraph g0 [\"on_resolved\"]"), "{out}");
    assert!(out.contains("-.->|\"on_failure, when "), "{out}");
    assert!(out.contains("==>|\"always\"|"), "{out}");
    // Every line is one of ours: no label ended its string.
    assert!(
        out.lines().all(|l| {
            let l = l.trim();
            l.starts_with('n')
                || l.starts_with("flowchart")
                || l.starts_with("subgraph")
                || l == "end"
                || l.starts_with("class")
        }),
        "{out}"
    );

    let dot_out = Test::new()
        .playbook("h.yaml", &unindent(HOSTILE))
        .args(["graph", "hostile", "--format", "dot"])
        .run()
        .stdout;
    assert!(!dot_out.contains("label=<"), "{dot_out}");
    assert!(
        dot_out.contains(r#"\\\"#),
        "backslashes doubled:\n{dot_out}"
    );
    if have_dot() {
        dot_accepts(&dot_out);
    }
}

/// A playbook whose `restart` fails until `flag` exists.
fn flaky(flag: &Path) -> String {
    unindent(&format!(
        r#"
        version: 1
        name: flaky
        title: Flaky
        match:
          labels: ['app="t"']
        steps:
          - id: check
            shell: echo ok
          - id: restart
            needs: [check]
            shell: test -f '{}'
            retry: {{ attempts: 2, backoff: 10ms }}
          - id: escalate
            needs: [restart]
            trigger: on_failure
            notify: {{ console: {{ text: restart failed }} }}
          - id: verify
            needs: [restart]
            when: "false"
            shell: echo verify
          - id: report
            needs: [restart]
            trigger: always
            shell: echo report
        on_resolved:
          - id: all_clear
            notify: {{ console: {{ text: resolved }} }}
        "#,
        flag.display()
    ))
}

/// A run of `flaky` that failed, then was resumed and succeeded; the
/// playbook lives at an absolute path, so later commands find the version
/// that ran. Returns the state and the run id.
fn failed_then_resumed() -> (State, String, PathBuf) {
    let state = State::new();
    let root = state.path().parent().expect("parent").to_path_buf();
    let dir = root.join("book");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let flag = root.join("restart.ok");
    std::fs::write(dir.join("flaky.yaml"), flaky(&flag)).expect("write playbook");
    state
        .irctl()
        .args(["run", "flaky", "--label", "app=t", "--playbooks"])
        .arg(&dir)
        .status(1)
        .run();
    let runs = state
        .irctl()
        .args(["runs", "--format", "json"])
        .run()
        .json();
    let run = runs[0]["run_id"].as_str().expect("run id").to_string();
    std::fs::write(&flag, "").expect("flag");
    state
        .irctl()
        .args(["resume", &run, "--playbooks"])
        .arg(&dir)
        .run();
    (state, run, dir)
}

#[test]
fn a_failed_then_resumed_run_is_coloured_by_its_combined_outcome() {
    let (state, run, _dir) = failed_then_resumed();
    let filters = state::filters();
    // The random end of the id is enough.
    let short = run.rsplit('-').next().expect("suffix").to_string();
    let out = state.irctl().args(["graph", "--run", &short]).run().stdout;
    mermaid::check(&out).unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert!(
        out.contains("n1[\"restart<br>shell<br>succeeded\"]"),
        "{out}"
    );
    assert!(
        out.contains("n3[\"verify<br>shell<br>skipped: when was false"),
        "{out}"
    );
    assert!(
        out.contains("n2 -.->|\"on_failure\"| n2") || out.contains("n1 -.->|\"on_failure\"| n2"),
        "{out}"
    );
    insta::with_settings!({ filters => filters.clone() }, {
        insta::assert_snapshot!("resumed_run_mermaid", out);
    });
    let dot_out = state
        .irctl()
        .args(["graph", "--run", &run, "--format", "dot"])
        .run()
        .stdout;
    insta::with_settings!({ filters => filters }, {
        insta::assert_snapshot!("resumed_run_dot", dot_out);
    });
    if have_dot() {
        dot_accepts(&dot_out);
    }
    state
        .irctl()
        .args(["graph", "--run", "nope"])
        .status(2)
        .stderr_contains("no run `nope`")
        .run();
}

#[test]
fn the_postmortem_embeds_a_gantt_and_each_runs_dag() {
    let (state, run, _dir) = failed_then_resumed();
    let runs = state
        .irctl()
        .args(["runs", "--format", "json"])
        .run()
        .json();
    let incident = runs[0]["incident_id"]
        .as_str()
        .expect("incident")
        .to_string();
    state
        .irctl()
        .args(["note", "--run", &run, "restart: failed; #1 <b>x</b>"])
        .run();
    let md = state
        .irctl()
        .args(["postmortem", "--incident", &incident])
        .run()
        .stdout;
    let blocks = mermaid::blocks(&md);
    assert_eq!(blocks.len(), 2, "{md}");
    for b in &blocks {
        mermaid::check(b).unwrap_or_else(|e| panic!("{e}\n{b}"));
    }
    assert!(blocks[0].starts_with("gantt\n"), "{}", blocks[0]);
    assert!(
        blocks[0].contains("note by alice :milestone"),
        "{}",
        blocks[0]
    );
    assert!(
        blocks[0].contains("restart (2 attempts) :crit"),
        "{}",
        blocks[0]
    );
    assert!(blocks[0].contains("restart :done"), "{}", blocks[0]);
    assert!(
        blocks[1].contains("n1 -.->|\"on_failure\"| n2"),
        "{}",
        blocks[1]
    );
    // The text tables are still there for readers without Mermaid.
    assert!(md.contains("| restart | succeeded |"), "{md}");
}

#[test]
fn the_grammar_check_rejects_broken_mermaid() {
    let good = "flowchart TD\n    n0[\"a#34;b<br>c\"]\n    n1{{\"x\"}}\n    n0 -.->|\"on_failure\"| n1\n    classDef failed fill:#ffcdd2,stroke:#c62828\n    class n0,n1 failed\n";
    mermaid::check(good).expect("good flowchart");
    for bad in [
        "flowchart TD\n    n0[\"a\"b\"]\n",
        "flowchart TD\n    n0[\"a\"]; click n0 call alert(1)\n",
        "flowchart TD\n    n0[\"<script>\"]\n",
        "flowchart TD\n    n0[\"#x\"]\n",
        "flowchart TD\n    n0[\"a\"]\n    n0 --> n5\n",
        "flowchart TD\n    subgraph g0 [\"x\"]\n",
        "flowchart TD\n    click n0 href \"javascript:alert(1)\"\n",
        "flowchart TD\n    n0[\"`**md**`\"]\n",
        "graph LR\n    a-->b\n",
    ] {
        assert!(mermaid::check(bad).is_err(), "accepted:\n{bad}");
    }
    let gantt = "gantt\n    title t\n    dateFormat YYYY-MM-DD HH:mm:ss.SSS\n    axisFormat %H:%M:%S\n    section s\n    a :done, r0, 2024-01-01 10:00:00.000, 2024-01-01 10:00:00.250\n";
    mermaid::check(gantt).expect("good gantt");
    for bad in [
        gantt.replace("a :done", "a: b :done"),
        gantt.replace("a :done", "a#b :done"),
        gantt.replace("10:00:00.250", "09:00:00.000"),
        gantt.replace("title t", "title t; click"),
        "gantt\n    title t\n".to_string(),
    ] {
        assert!(mermaid::check(&bad).is_err(), "accepted:\n{bad}");
    }
}
