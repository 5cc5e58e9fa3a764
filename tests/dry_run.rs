//! `run --dry-run` levels: the longest `needs` path to each step, however
//! the file orders its steps (a step may be declared before its needs).

mod common;

use common::{Test, unindent};

#[test]
fn levels_are_the_longest_needs_path_whatever_the_declaration_order() {
    let yaml = format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\n{}",
        unindent(
            r#"
            steps:
              - id: last
                needs: [mid, first]
                shell: "true"
              - id: mid
                needs: [side, first]
                shell: "true"
              - id: side
                needs: [first]
                shell: "true"
              - id: first
                shell: "true"
              - id: alone
                shell: "true"
            "#
        )
    );
    let out = Test::new()
        .playbook("t.yaml", &yaml)
        .args(["run", "--label", "app=t", "--dry-run"])
        .run();
    let levels: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("level ") || (l.starts_with("  ") && !l.starts_with("    ")))
        .collect();
    assert_eq!(
        levels,
        [
            "level 0:",
            "  first",
            "  alone",
            "level 1:",
            "  side (needs first; on_success)",
            "level 2:",
            "  mid (needs side, first; on_success)",
            "level 3:",
            "  last (needs mid, first; on_success)",
        ],
        "{}",
        out.stdout
    );
}
