//! `irctl validate` against one fixture per diagnostic code, every output
//! format and hostile input; plus `list`, `schema`, `completions` and `man`.
//!
//! Positions in the expectations are 1-based line and column of the offending
//! node in the (unindented) fixture, counted by hand; a fixture built with
//! [`playbook`] starts on line 4, after the three lines of [`HEADER`].

mod common;

use common::{Output, Test, unindent};
use serde_json::Value;

/// Appended to fixtures that are not about drills, so `no-drill` stays out of the way.
const DRILL: &str = "drill:\n  incident: { labels: { alertname: Test } }\n";

/// A fixture with a drill section appended.
fn with_drill(yaml: &str) -> String {
    unindent(yaml) + DRILL
}

/// Written before the fixtures built by [`playbook`]: lines 1 to 3.
const HEADER: &str = "version: 1\nname: test\ntitle: Test\n";

/// The usual fixture: [`HEADER`], then `rest` from line 4, then [`DRILL`].
fn playbook(rest: &str) -> String {
    format!("{HEADER}{}{DRILL}", unindent(rest))
}

/// `(file, severity, code, line, column)` of every finding in `validate --format json` output.
fn findings_by_file(output: &Output) -> Vec<(String, String, String, u64, u64)> {
    output
        .json()
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|d| {
            (
                d["file"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
                d["code"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// `(severity, code, line, column)` of every finding in `validate --format json` output.
fn findings(output: &Output) -> Vec<(String, String, u64, u64)> {
    findings_by_file(output)
        .into_iter()
        .map(|(_, severity, code, line, column)| (severity, code, line, column))
        .collect()
}

/// Validates `yaml` as `playbooks/p.yaml`, asserts exactly `expected` findings
/// and the exit code they imply, and returns the findings as JSON.
fn assert_findings(yaml: &str, expected: &[(&str, &str, u64, u64)]) -> Vec<Value> {
    let status = i32::from(expected.iter().any(|(severity, ..)| *severity == "error"));
    let output = Test::new()
        .playbook("p.yaml", yaml)
        .args(["validate", "--format", "json"])
        .status(status)
        .run();
    let expected: Vec<(String, String, u64, u64)> = expected
        .iter()
        .map(|(s, c, l, col)| (s.to_string(), c.to_string(), *l, *col))
        .collect();
    assert_eq!(findings(&output), expected, "\n{}", output.stdout);
    for d in output.json().as_array().unwrap() {
        assert_eq!(d["file"], "playbooks/p.yaml");
    }
    output.json().as_array().unwrap().clone()
}

/// A valid playbook named `name`, for alerts named `name`, with a drill.
fn valid(name: &str) -> String {
    unindent(&format!(
        "
        version: 1
        name: {name}
        title: A valid playbook
        owner: team-test
        priority: 3
        match:
          labels: ['alertname=\"{name}\"']
        steps:
          - id: hello
            shell: echo hello
        drill:
          incident: {{ labels: {{ alertname: {name} }} }}
        "
    ))
}

// --- exit codes ------------------------------------------------------------------

#[test]
fn valid_playbooks_exit_zero_with_a_summary() {
    Test::new()
        .playbook("a.yaml", &valid("a"))
        .playbook("nested/b.yml", &valid("b"))
        .args(["validate", "--color", "never"])
        .stderr("2 playbooks valid\n")
        .stdout("")
        .run();
}

#[test]
fn json_of_a_valid_set_is_an_empty_array() {
    Test::new()
        .playbook("a.yaml", &valid("a"))
        .args(["validate", "--format", "json"])
        .stdout("[]\n")
        .run();
}

#[test]
fn warnings_exit_zero_unless_denied() {
    let yaml = unindent(
        "
        version: 1
        name: test
        title: Test
        steps:
          - id: a
            shell: echo a
        ",
    );
    Test::new()
        .playbook("p.yaml", &yaml)
        .args(["validate", "--color", "never"])
        .stderr_contains("warning[no-drill]")
        .stderr_contains("0 errors, 1 warning in 1 of 1 playbook\n")
        .run();
    Test::new()
        .playbook("p.yaml", &yaml)
        .args(["validate", "--deny-warnings", "--color", "never"])
        .status(1)
        .stderr_contains("0 errors, 1 warning in 1 of 1 playbook\n")
        .run();
}

#[test]
fn explicit_paths_override_the_playbooks_directory() {
    Test::new()
        .playbook("broken.yaml", "version: [\n")
        .file("elsewhere/ok.yaml", valid("ok"))
        .args(["validate", "elsewhere/ok.yaml", "--color", "never"])
        .stderr("1 playbook valid\n")
        .run();
    Test::new()
        .file("elsewhere/ok.yaml", valid("ok"))
        .args(["validate", "--playbooks", "elsewhere", "--color", "never"])
        .stderr("1 playbook valid\n")
        .run();
    Test::new()
        .file("elsewhere/ok.yaml", valid("ok"))
        .env("IRCTL_PLAYBOOKS", "elsewhere")
        .args(["validate", "--color", "never"])
        .stderr("1 playbook valid\n")
        .run();
}

// --- one fixture per code: YAML and schema ---------------------------------------

#[test]
fn yaml_syntax() {
    let f = assert_findings(
        "version: 1\nname: test\ntitle: a: b\nsteps: []\n",
        &[("error", "yaml-syntax", 3, 9)],
    );
    assert_eq!(
        f[0]["message"],
        "mapping values are not allowed in this context"
    );
}

#[test]
fn schema_unknown_field_suggests_the_field() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
              - id: b
                neds: [a]
                shell: echo b
            ",
        ),
        &[("error", "schema", 8, 5)],
    );
    assert_eq!(f[0]["message"], "unknown field `neds`");
    assert_eq!(f[0]["help"], "did you mean `needs`?");
}

#[test]
fn schema_unknown_field_without_a_close_name_lists_the_fields() {
    let f = assert_findings(
        &playbook(
            "
            runbook: https://wiki
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "schema", 4, 1)],
    );
    assert_eq!(
        f[0]["help"],
        "expected one of `version`, `name`, `title`, `description`, `owner`, `priority`, `kind`, `auto`, \
         `once_within`, `max_runs`, `concurrency`, `match`, `inputs`, `secrets`, `defaults`, `timeout`, `allowed_hosts`, `approvals`, `cancel_on_resolve`, `steps`, `on_resolved`, `drill`, \
         `tests`"
    );
}

#[test]
fn schema_wrong_type() {
    let f = assert_findings(
        &playbook(
            "
            priority: high
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "schema", 4, 11)],
    );
    assert_eq!(f[0]["message"], "expected an integer, found `high`");

    let f = assert_findings(
        &with_drill(
            "
            version: 1
            name: test
            title: [a, b]
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "schema", 3, 8)],
    );
    assert_eq!(f[0]["message"], "expected a string, found a list");

    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
                retry: { attempts: -1 }
            ",
        ),
        &[("error", "schema", 7, 24)],
    );
    assert_eq!(
        f[0]["message"],
        "expected a non-negative integer, found `-1`"
    );

    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
                trigger: sometimes
            ",
        ),
        &[("error", "schema", 7, 14)],
    );
    assert_eq!(
        f[0]["message"],
        "unknown value `sometimes`, expected one of `on_success`, `on_failure`, `always`"
    );
}

#[test]
fn schema_missing_field_points_at_the_mapping() {
    let f = assert_findings(
        &with_drill(
            "
            # A playbook without a title.
            version: 1
            name: test
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "schema", 2, 1)],
    );
    assert_eq!(f[0]["message"], "missing required field `title`");

    // A step without an id: its first key.
    assert_findings(
        &playbook(
            "
            steps:
              - name: nameless
                shell: echo a
            ",
        ),
        &[("error", "schema", 5, 5)],
    );

    // A flow mapping without `url`: its `{`.
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                http: { method: GET }
            ",
        ),
        &[("error", "schema", 6, 11)],
    );
    assert_eq!(f[0]["message"], "missing required field `url`");
}

#[test]
fn schema_more_than_one_step_kind() {
    let f = assert_findings(
        &playbook(
            r#"
            steps:
              - id: a
                shell: echo a
                http: { url: "https://example.com" }
            "#,
        ),
        &[("error", "schema", 5, 9)],
    );
    assert_eq!(
        f[0]["message"],
        "step `a` has more than one action: `shell` and `http`"
    );
}

#[test]
fn schema_no_step_kind() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                name: does nothing
            ",
        ),
        &[("error", "schema", 5, 9)],
    );
    assert_eq!(f[0]["message"], "step `a` has no action");
    assert_eq!(
        f[0]["help"],
        "give it one of `shell`, `command`, `http` or `notify`"
    );
}

#[test]
fn schema_wrong_version() {
    let f = assert_findings(
        &with_drill(
            "
            version: 2
            name: test
            title: Test
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "schema", 1, 10)],
    );
    assert_eq!(
        f[0]["message"],
        "unsupported playbook version `2`; this irctl reads version 1"
    );
}

#[test]
fn duplicate_key() {
    let f = assert_findings(
        &playbook(
            "
            title: Again
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "duplicate-key", 4, 1)],
    );
    assert_eq!(f[0]["message"], "duplicate key `title`");
}

#[test]
fn duplicate_playbook_name() {
    let output = Test::new()
        .playbook("a.yaml", &valid("same"))
        .playbook("b.yaml", &valid("same"))
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    let f = output.json();
    assert_eq!(
        findings(&output),
        [("error".into(), "duplicate-playbook-name".into(), 2, 7)]
    );
    assert_eq!(f[0]["file"], "playbooks/b.yaml");
    assert_eq!(
        f[0]["message"],
        "playbook name `same` is already used by `playbooks/a.yaml`"
    );
}

// --- steps and the DAG ------------------------------------------------------------

#[test]
fn duplicate_step_id() {
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo one
              - id: a
                shell: echo two
            ",
        ),
        &[("error", "duplicate-step-id", 7, 9)],
    );
}

#[test]
fn unknown_need_suggests_the_closest_step() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: check
                shell: echo ok
              - id: fix
                needs: [chek]
                shell: echo fix
            ",
        ),
        &[("error", "unknown-need", 8, 13)],
    );
    assert_eq!(
        f[0]["message"],
        "step `fix` needs `chek`, which does not exist"
    );
    assert_eq!(f[0]["help"], "did you mean `check`?");
}

#[test]
fn cycle_prints_the_whole_loop() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                needs: [b]
                shell: echo a
              - id: b
                needs: [c]
                shell: echo b
              - id: c
                needs: [a]
                shell: echo c
            ",
        ),
        &[("error", "cycle", 6, 13)],
    );
    assert_eq!(f[0]["message"], "steps form a cycle: a -> b -> c -> a");
}

#[test]
fn self_need() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                needs: [a]
                shell: echo a
            ",
        ),
        &[("error", "self-need", 6, 13)],
    );
    assert_eq!(f[0]["message"], "step `a` needs itself");
}

#[test]
fn invalid_step_id() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: check-disk
                shell: df -h
            ",
        ),
        &[("error", "invalid-step-id", 5, 9)],
    );
    assert_eq!(
        f[0]["help"],
        "use letters, digits and `_` so templates can say `steps.check_disk`"
    );
}

#[test]
fn invalid_name() {
    let f = assert_findings(
        &with_drill(
            "
            version: 1
            name: Disk_Full
            title: Test
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "invalid-name", 2, 7)],
    );
    assert_eq!(
        f[0]["message"],
        "playbook name `Disk_Full` is not kebab-case"
    );
}

// --- templates ----------------------------------------------------------------------

#[test]
fn template_syntax() {
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo {{ oops
            ",
        ),
        &[("error", "template-syntax", 6, 12)],
    );
}

#[test]
fn template_syntax_in_a_block_scalar_points_at_the_line() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: |
                  echo one
                  echo {{ }}
            ",
        ),
        &[("error", "template-syntax", 8, 7)],
    );
    assert_eq!(
        f[0]["message"],
        "invalid template in `steps.a.shell`: unexpected end of variable block"
    );
}

#[test]
fn undefined_variable() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo {{ foo }}
            ",
        ),
        &[("error", "undefined-variable", 6, 20)],
    );
    assert_eq!(f[0]["message"], "`foo` is not defined in `steps.a.shell`");

    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo {{ incident.lables.instance }}
            ",
        ),
        &[("error", "undefined-variable", 6, 20)],
    );
    assert_eq!(f[0]["message"], "`incident.lables` does not exist");
    assert_eq!(f[0]["help"], "did you mean `labels`?");
}

#[test]
fn match_when_sees_only_the_incident() {
    assert_findings(
        &playbook(
            "
            match:
              when: steps.a.stdout == 'x'
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "undefined-variable", 5, 9)],
    );
}

#[test]
fn unknown_step_ref() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo {{ steps.nope.stdout }}
            ",
        ),
        &[("error", "unknown-step-ref", 6, 20)],
    );
    assert_eq!(
        f[0]["message"],
        "`steps.nope` refers to a step that does not exist"
    );
}

#[test]
fn not_an_ancestor() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
              - id: b
                shell: echo {{ steps.a.stdout }}
            ",
        ),
        &[("error", "not-an-ancestor", 8, 20)],
    );
    assert_eq!(f[0]["help"], "add `a` to `needs` of `b`");

    // Through `needs`, directly or not, is fine.
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
              - id: b
                needs: [a]
                shell: echo b
              - id: c
                needs: [b]
                shell: echo {{ steps.a.stdout }}
            ",
        ),
        &[],
    );
}

#[test]
fn undeclared_secret() {
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo {{ secrets.TOKEN }}
            ",
        ),
        &[("error", "undeclared-secret", 6, 20)],
    );
    assert_eq!(
        f[0]["message"],
        "secret `TOKEN` is not declared in `secrets:`"
    );
}

#[test]
fn unknown_input() {
    let f = assert_findings(
        &playbook(
            "
            inputs:
              mountpoint: { default: / }
            steps:
              - id: a
                shell: df {{ inputs.mountpiont }}
            ",
        ),
        &[
            ("warning", "unused-input", 5, 3),
            ("error", "unknown-input", 8, 18),
        ],
    );
    assert_eq!(f[1]["help"], "did you mean `mountpoint`?");
}

#[test]
fn unknown_drill_input() {
    let f = assert_findings(
        &unindent(
            "
            version: 1
            name: test
            title: Test
            inputs:
              threshold: { default: 90 }
            steps:
              - id: a
                shell: echo {{ inputs.threshold }}
            drill:
              incident: { labels: { alertname: Test } }
              inputs:
                treshold: 0
            ",
        ),
        &[("error", "unknown-input", 12, 5)],
    );
    assert_eq!(f[0]["help"], "did you mean `threshold`?");
}

#[test]
fn invalid_expression() {
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                when: 1 +
                shell: echo a
            ",
        ),
        &[("error", "invalid-expression", 6, 11)],
    );
    assert_findings(
        &playbook(
            "
            match:
              when: incident.labels.x ==
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "invalid-expression", 5, 9)],
    );
}

// --- matchers, durations, schedules, URLs, drills ------------------------------------

#[test]
fn invalid_matcher() {
    let f = assert_findings(
        &playbook(
            "
            match:
              labels:
                - alertname
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("error", "invalid-matcher", 6, 7)],
    );
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("`alertname` is not a matcher"),
        "{}",
        f[0]
    );
}

#[test]
fn invalid_regex() {
    let f = assert_findings(
        &playbook(
            r#"
            match:
              labels:
                - severity=~"(crit"
            steps:
              - id: a
                shell: echo a
            "#,
        ),
        &[("error", "invalid-regex", 6, 7)],
    );
    assert_eq!(f[0]["message"], "invalid regex `(crit`: unclosed group");
}

#[test]
fn invalid_duration() {
    let f = assert_findings(
        &playbook(
            "
            timeout: soon
            defaults:
              timeout: 30
            steps:
              - id: a
                shell: echo a
                timeout: 5 minutes
            ",
        ),
        &[
            ("error", "invalid-duration", 4, 10),
            ("error", "invalid-duration", 6, 12),
            ("error", "invalid-duration", 10, 14),
        ],
    );
    assert_eq!(
        f[2]["message"],
        "`steps.a.timeout`: invalid duration `5 minutes`: spaces are not allowed; write e.g. `30s`, `5m` or `1h30m`"
    );
}

#[test]
fn invalid_cron() {
    let f = assert_findings(
        &unindent(
            r#"
            version: 1
            name: test
            title: Test
            steps:
              - id: a
                shell: echo a
            drill:
              schedule: "0 10 * *"
              incident: { labels: { alertname: Test } }
            "#,
        ),
        &[("error", "invalid-cron", 8, 13)],
    );
    assert_eq!(
        f[0]["message"],
        "invalid drill schedule `0 10 * *`: expected 5 fields, found 4"
    );
}

#[test]
fn invalid_url() {
    let f = assert_findings(
        &playbook(
            r#"
            steps:
              - id: a
                http: { url: "ftp://example.com/x" }
              - id: b
                http: { url: not a url }
            "#,
        ),
        &[
            ("error", "invalid-url", 6, 18),
            ("error", "invalid-url", 8, 18),
        ],
    );
    assert_eq!(
        f[0]["message"],
        "`steps.a.http.url`: unsupported URL scheme `ftp`"
    );
    assert_eq!(
        f[1]["message"],
        "`steps.b.http.url`: invalid URL `not a url`: relative URL without a base"
    );
}

#[test]
fn invalid_drill_incident() {
    assert_findings(
        &unindent(
            "
            version: 1
            name: test
            title: Test
            steps:
              - id: a
                shell: echo a
            drill:
              incident: { labels: [alertname, Test] }
            ",
        ),
        &[("error", "invalid-drill-incident", 8, 13)],
    );
}

// --- warnings -------------------------------------------------------------------------

#[test]
fn unused_secret() {
    let f = assert_findings(
        &playbook(
            "
            secrets: [TOKEN]
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("warning", "unused-secret", 4, 11)],
    );
    assert_eq!(f[0]["message"], "secret `TOKEN` is declared but never used");
}

#[test]
fn unused_input_points_at_its_key() {
    // `region:` also appears inside `aws_region:`; the warning is about the second key.
    assert_findings(
        &playbook(
            "
            inputs:
              aws_region: { default: eu-west-1 }
              region:
                default: eu
            steps:
              - id: a
                shell: echo {{ inputs.aws_region }}
            ",
        ),
        &[("warning", "unused-input", 6, 3)],
    );
}

#[test]
fn unreachable_step() {
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
                when: false
            ",
        ),
        &[("warning", "unreachable-step", 7, 11)],
    );
}

#[test]
fn no_drill() {
    let f = assert_findings(
        &unindent(
            "
            version: 1
            name: test
            title: Test
            steps:
              - id: a
                shell: echo a
            ",
        ),
        &[("warning", "no-drill", 2, 7)],
    );
    assert_eq!(f[0]["message"], "playbook `test` has no `drill` section");
}

#[test]
fn insecure_tls() {
    assert_findings(
        &playbook(
            r#"
            steps:
              - id: a
                http: { url: "https://insecure.example.com", insecure: true }
            "#,
        ),
        &[("warning", "insecure-tls", 6, 50)],
    );
}

#[test]
fn unsafe_interpolation() {
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo safe {{ incident.title | safe }}
            ",
        ),
        &[("error", "unsafe-interpolation", 6, 42)],
    );
    // `safe` on our own configuration is not incident data.
    assert_findings(
        &playbook(
            "
            inputs:
              base: { default: 'http://prometheus:9090' }
            steps:
              - id: a
                http: { url: '{{ inputs.base | safe }}/api/v1/query' }
            ",
        ),
        &[],
    );
}

#[test]
fn drill_that_never_matches_its_playbook() {
    let f = assert_findings(
        &unindent(
            r#"
            version: 1
            name: test
            title: Test
            match:
              labels: ['alertname="DiskFull"']
            steps:
              - id: a
                shell: echo a
            drill:
              incident: { labels: { alertname: DiskFul } }
            "#,
        ),
        &[("warning", "never-matches", 10, 13)],
    );
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("the drill incident of `test` does not match it: "),
        "{}",
        f[0]
    );
}

#[test]
fn drill_that_ties_between_playbooks() {
    let yaml = |name: &str| {
        unindent(&format!(
            "
            version: 1
            name: {name}
            title: Test
            match:
              labels: ['alertname=\"Same\"']
            steps:
              - id: a
                shell: echo a
            drill:
              incident: {{ labels: {{ alertname: Same }} }}
            "
        ))
    };
    let output = Test::new()
        .playbook("a.yaml", &yaml("a"))
        .playbook("b.yaml", &yaml("b"))
        .args(["validate", "--format", "json"])
        .run();
    let codes: Vec<(String, String, u64, u64)> = findings(&output);
    assert_eq!(
        codes,
        [
            ("warning".into(), "ambiguous-match".into(), 10, 13),
            ("warning".into(), "ambiguous-match".into(), 10, 13),
        ]
    );
    assert_eq!(
        output.json()[0]["message"],
        "the drill incident of `a` matches 2 at the same priority: a, b"
    );
}

// --- many problems, one run -------------------------------------------------------------

#[test]
fn every_error_in_every_file_is_reported_in_one_run() {
    let output = Test::new()
        .playbook(
            "a.yaml",
            &with_drill(
                "
                version: 1
                name: a
                title: A
                steps:
                  - id: check
                    shell: echo {{ secrets.TOKEN }}
                  - id: fix
                    needs: [chek]
                    shell: echo fix
                ",
            ),
        )
        .playbook("b.yaml", "version: 1\nname: b\ntitle: a: b\n")
        .playbook("c.yaml", &valid("c"))
        .playbook(
            "d/e.yaml",
            &unindent(
                r#"
                version: 1
                name: e
                title: E
                inputs:
                  unused: {}
                steps:
                  - id: x
                    shell: echo x
                    timeout: 1 hour
                drill:
                  schedule: "every day"
                  incident: { labels: { alertname: E } }
                "#,
            ),
        )
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    let got = findings_by_file(&output);
    let expected = [
        ("playbooks/a.yaml", "error", "undeclared-secret", 6, 20),
        ("playbooks/a.yaml", "error", "unknown-need", 8, 13),
        ("playbooks/b.yaml", "error", "yaml-syntax", 3, 9),
        ("playbooks/d/e.yaml", "warning", "unused-input", 5, 3),
        ("playbooks/d/e.yaml", "error", "invalid-duration", 9, 14),
        ("playbooks/d/e.yaml", "error", "invalid-cron", 11, 13),
    ]
    .map(|(f, s, c, l, col)| (f.to_string(), s.to_string(), c.to_string(), l, col));
    assert_eq!(got, expected);
}

#[test]
fn summary_counts_errors_warnings_and_files() {
    Test::new()
        .playbook("a.yaml", "version: 1\nname: a\ntitle: a: b\n")
        .playbook(
            "b.yaml",
            &unindent(
                "
                version: 1
                name: b
                title: B
                secrets: [A, B]
                steps:
                  - id: x
                    shell: echo {{ nope }}
                ",
            ),
        )
        .playbook("c.yaml", &valid("c"))
        .args(["validate", "--color", "never"])
        .status(1)
        .stderr_contains("\n2 errors, 3 warnings in 2 of 3 playbooks\n")
        .run();
}

// --- human output ------------------------------------------------------------------------

fn human(files: &[(&str, &str)]) -> String {
    let mut test = Test::new();
    for (name, yaml) in files {
        test = test.playbook(name, yaml);
    }
    let output = test.args(["validate", "--color", "never"]).status(1).run();
    assert_eq!(output.stdout, "", "human output goes to stderr");
    output.stderr
}

#[test]
fn human_unknown_need() {
    insta::assert_snapshot!(human(&[(
        "db.yaml",
        &with_drill(
            "
            version: 1
            name: db
            title: DB
            steps:
              - id: restart_db
                shell: systemctl restart postgresql
              - id: verify
                needs: [restart_bd]
                shell: pg_isready
            ",
        ),
    )]));
}

#[test]
fn human_unknown_field() {
    insta::assert_snapshot!(human(&[(
        "p.yaml",
        &with_drill(
            "
            version: 1
            name: p
            title: P
            steps:
              - id: a
                shel: echo a
            ",
        ),
    )]));
}

#[test]
fn human_cycle_and_template_errors() {
    insta::assert_snapshot!(human(&[
        (
            "cycle.yaml",
            &with_drill(
                "
                version: 1
                name: cycle
                title: Cycle
                steps:
                  - id: a
                    needs: [c]
                    shell: echo a
                  - id: b
                    needs: [a]
                    shell: echo b
                  - id: c
                    needs: [b]
                    shell: echo c
                ",
            ),
        ),
        (
            "templates.yaml",
            &unindent(
                "
                version: 1
                name: templates
                title: Templates
                secrets: [SLACK_WEBHOOK]
                steps:
                  - id: usage
                    shell: |
                      df -hP {{ inputs.mountpoint }}
                      echo {{ steps.usage.stdout }
                  - id: tell
                    notify:
                      console: { text: '{{ incident.lables.instance }} is full' }
                ",
            ),
        ),
    ]));
}

#[test]
fn human_color_is_off_when_not_a_terminal_and_on_when_asked() {
    let yaml = "version: 1\nname: a\ntitle: a: b\n";
    let plain = Test::new()
        .playbook("a.yaml", yaml)
        .args(["validate"])
        .status(1)
        .run();
    assert!(!plain.stderr.contains('\x1b'), "{}", plain.stderr);
    let colored = Test::new()
        .playbook("a.yaml", yaml)
        .args(["validate", "--color", "always"])
        .status(1)
        .run();
    assert!(
        colored.stderr.contains("\x1b[1;31merror"),
        "{}",
        colored.stderr
    );
}

// --- CI formats ------------------------------------------------------------------------------

#[test]
fn github_format_is_exact_and_escaped() {
    Test::new()
        .playbook(
            "a,b:c.yaml",
            &with_drill(
                "
                version: 1
                name: abc
                title: Test
                steps:
                  - id: check
                    shell: echo ok
                  - id: fix
                    needs: [chek]
                    shell: echo fix
                ",
            ),
        )
        .playbook(
            "d.yaml",
            &with_drill(
                "
                version: 1
                name: d
                title: D
                steps:
                  - id: a
                    shell: echo a
                    timeout: 5%
                ",
            ),
        )
        .args(["validate", "--format", "github"])
        .status(1)
        .stdout(concat!(
            "::error file=playbooks/a%2Cb%3Ac.yaml,line=8,col=13,title=irctl unknown-need::",
            "step `fix` needs `chek`, which does not exist%0Ahelp: did you mean `check`?\n",
            "::error file=playbooks/d.yaml,line=7,col=14,title=irctl invalid-duration::",
            "`steps.a.timeout`: invalid duration `5%25`: unexpected `%25` after `5`; ",
            "write e.g. `30s`, `5m` or `1h30m`\n",
        ))
        .stderr("2 errors, 0 warnings in 2 of 2 playbooks\n")
        .run();
}

#[test]
fn github_format_for_a_file_level_problem_has_no_position() {
    Test::new()
        .playbook("p.yaml", "")
        .args(["validate", "--format", "github"])
        .status(1)
        .stdout(
            "::error file=playbooks/p.yaml,line=1,col=1,title=irctl schema::empty playbook file\
             %0Ahelp: a playbook starts with `version: 1`, `name`, `title` and `steps`\n",
        )
        .run();
}

/// Checks that `xml` is well formed enough for a CI parser: one root,
/// balanced tags, quoted attributes, and no raw `<` or `&` in text.
fn assert_well_formed_xml(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .expect("XML declaration");
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        let text = &rest[..open];
        assert!(!text.contains('>'), "raw `>` in text: {text:?}");
        for (i, _) in text.match_indices('&') {
            let entity = &text[i..text[i..].find(';').map_or(text.len(), |e| i + e + 1)];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"].contains(&entity),
                "bad entity {entity:?}"
            );
        }
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "`<` inside a tag: {tag:?}");
        assert_eq!(
            tag.matches('"').count() % 2,
            0,
            "unbalanced quotes in {tag:?}"
        );
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
        } else {
            let name = tag.split_whitespace().next().unwrap().trim_end_matches('/');
            if stack.is_empty() {
                roots += 1;
            }
            if !tag.ends_with('/') {
                stack.push(name.to_string());
            }
        }
        rest = &rest[close + 1..];
    }
    assert!(rest.trim().is_empty(), "text after the root: {rest:?}");
    assert!(stack.is_empty(), "unclosed: {stack:?}");
    assert_eq!(roots, 1, "exactly one root element");
}

#[test]
fn junit_has_one_testcase_per_file_and_failures_for_errors() {
    let run = |deny: bool| {
        let mut test = Test::new()
            .playbook("ok.yaml", &valid("ok"))
            .playbook(
                "bad.yaml",
                &with_drill(
                    r#"
                    version: 1
                    name: bad
                    title: Bad
                    steps:
                      - id: "a<b&c"
                        shell: echo a
                    "#,
                ),
            )
            .playbook(
                "warn.yaml",
                "version: 1\nname: warn\ntitle: W\nsteps:\n  - id: a\n    shell: echo\n",
            )
            .args(["validate", "--format", "junit"])
            .status(1);
        if deny {
            test = test.arg("--deny-warnings");
        }
        test.run().stdout
    };

    let xml = run(false);
    assert_well_formed_xml(&xml);
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites", "{xml}");
    assert_eq!(root.attribute("name"), Some("irctl validate"), "{xml}");
    assert_eq!(root.attribute("tests"), Some("3"), "{xml}");
    assert_eq!(root.attribute("failures"), Some("1"), "{xml}");
    let suite = root.first_element_child().expect("a testsuite");
    assert_eq!(suite.attribute("name"), Some("irctl validate"), "{xml}");
    assert_eq!(suite.attribute("tests"), Some("3"), "{xml}");
    assert_eq!(suite.attribute("failures"), Some("1"), "{xml}");
    assert_eq!(suite.attribute("errors"), Some("0"), "{xml}");
    let cases: Vec<_> = suite.children().filter(|n| n.is_element()).collect();
    assert!(cases.iter().all(|c| c.has_tag_name("testcase")), "{xml}");
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(
        names,
        [
            "playbooks/bad.yaml",
            "playbooks/ok.yaml",
            "playbooks/warn.yaml"
        ]
    );
    assert!(
        cases
            .iter()
            .all(|c| c.attribute("classname") == Some("irctl.validate")),
        "{xml}"
    );
    // A clean file is a case with nothing in it.
    assert!(cases[1].first_child().is_none(), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    let failure = cases[0].first_element_child().unwrap();
    assert!(failure.has_tag_name("failure"), "{xml}");
    assert_eq!(failure.attribute("type"), Some("invalid-step-id"));
    assert_eq!(
        failure.attribute("message"),
        Some("step id `a<b&c` is not an identifier")
    );
    assert!(
        xml.contains(r#"message="step id `a&lt;b&amp;c` is not an identifier""#),
        "{xml}"
    );
    let warn_out: Vec<_> = cases[2].children().filter(|n| n.is_element()).collect();
    assert_eq!(warn_out.len(), 1, "{xml}");
    assert!(warn_out[0].has_tag_name("system-out"), "{xml}");
    assert!(
        warn_out[0]
            .text()
            .unwrap()
            .starts_with("playbooks/warn.yaml:2:7: warning[no-drill]"),
        "{xml}"
    );

    let xml = run(true);
    assert_well_formed_xml(&xml);
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    let doc = roxmltree::Document::parse(&xml).expect("the JUnit report is XML");
    assert_eq!(doc.root_element().attribute("tests"), Some("3"), "{xml}");
    assert_eq!(doc.root_element().attribute("failures"), Some("2"), "{xml}");
}

// --- hostile and broken input ----------------------------------------------------------------

#[test]
fn empty_file() {
    for text in ["", "\n\n", "# nothing but a comment\n---\n"] {
        let f = assert_findings(text, &[("error", "schema", 1, 1)]);
        assert_eq!(f[0]["message"], "empty playbook file");
    }
}

#[test]
fn non_utf8_bytes() {
    let output = Test::new()
        .playbook("p.yaml", "")
        .file(
            "playbooks/p.yaml",
            b"version: 1\nname: t\xff\xfe\ntitle: T\n",
        )
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    assert_eq!(
        findings(&output),
        [("error".into(), "yaml-syntax".into(), 2, 8)]
    );
    assert_eq!(output.json()[0]["message"], "file is not valid UTF-8");
}

#[test]
fn alias_bomb_is_refused() {
    // Billion laughs: nine levels of nine aliases each, inside a field that
    // takes any value (the drill incident).
    let mut yaml = String::from(
        "version: 1\nname: bomb\ntitle: Bomb\nsteps:\n  - id: a\n    shell: echo\n\
         drill:\n  incident:\n    labels: { alertname: X }\n    \
         a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let refs = vec![format!("*{}", pair[0]); 9].join(", ");
        yaml.push_str(&format!("    {}: &{} [{refs}]\n", pair[1], pair[1]));
    }
    let output = Test::new()
        .playbook("bomb.yaml", &yaml)
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    let f = output.json();
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f[0]["code"], "yaml-syntax");
    assert_eq!(f[0]["file"], "playbooks/bomb.yaml");
    assert!(
        f[0]["message"].as_str().unwrap().contains("alias bomb"),
        "{f}"
    );
}

#[test]
fn deeply_nested_yaml_is_refused() {
    let output = Test::new()
        .playbook("deep.yaml", &"[".repeat(10_000))
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    let f = output.json();
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f[0]["code"], "yaml-syntax");
    assert_eq!(f[0]["message"], "document nests too deeply");

    // Within the parser's limit but past irctl's own depth budget.
    let yaml = format!(
        "version: 1\nname: x\ntitle: x\nsteps:\n  - id: a\n    http:\n      url: https://x\n      json: {}{}\n",
        "[".repeat(100),
        "]".repeat(100)
    );
    let f = assert_findings(&yaml, &[("error", "yaml-syntax", 8, 73)]);
    assert_eq!(f[0]["message"], "document nests deeper than 64 levels");
}

#[test]
fn huge_file_is_refused_without_reading_it() {
    let test = Test::new().playbook("ok.yaml", &valid("ok"));
    let line = "# padding padding padding padding padding padding padding padding\n";
    let big = line.repeat(50 * 1024 * 1024 / line.len());
    let output = test
        .file("playbooks/huge.yaml", big)
        .args(["validate", "--format", "json"])
        .status(1)
        .run();
    let f = output.json();
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f[0]["file"], "playbooks/huge.yaml");
    assert_eq!(f[0]["line"], 0);
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .ends_with("bytes, over the 2 MiB limit for a playbook"),
        "{f}"
    );
}

#[test]
fn directory_without_playbooks_is_a_usage_error() {
    Test::new()
        .dir("playbooks")
        .file("playbooks/README.md", "not a playbook")
        .args(["validate", "--color", "never"])
        .status(2)
        .stdout("")
        .stderr("error: no playbooks (`*.yaml`, `*.yml`) found in `playbooks`\n")
        .run();
}

#[test]
fn missing_path_is_a_usage_error() {
    Test::new()
        .args(["validate", "nope", "--color", "never"])
        .status(2)
        .stdout("")
        .stderr("error: playbook path `nope` does not exist\n")
        .run();
    Test::new()
        .args(["validate", "--format", "json"])
        .status(2)
        .stdout("")
        .stderr("error: playbook path `playbooks` does not exist\n")
        .run();
}

#[test]
fn directory_named_like_a_playbook_is_searched_not_read() {
    Test::new()
        .playbook("ok.yaml", &valid("ok"))
        .dir("playbooks/x.yaml")
        .args(["validate", "--color", "never"])
        .stderr("1 playbook valid\n")
        .run();
    Test::new()
        .playbook("x.yaml/inner.yaml", &valid("inner"))
        .args(["validate", "--color", "never"])
        .stderr("1 playbook valid\n")
        .run();
}

#[test]
fn directory_passed_explicitly_is_searched() {
    Test::new()
        .dir("playbooks/x.yaml")
        .args(["validate", "playbooks/x.yaml", "--color", "never"])
        .status(2)
        .stderr("error: no playbooks (`*.yaml`, `*.yml`) found in `playbooks/x.yaml`\n")
        .run();
}

#[test]
fn unreadable_file_is_a_finding_for_that_file() {
    use std::os::unix::fs::PermissionsExt;
    let test = Test::new()
        .playbook("ok.yaml", &valid("ok"))
        .playbook("secret.yaml", &valid("secret"));
    let path = test.path().join("playbooks/secret.yaml");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&path).is_ok() {
        // Running as root: permissions do not apply, nothing to test.
        return;
    }
    let output = test.args(["validate", "--format", "json"]).status(1).run();
    let f = output.json();
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f[0]["file"], "playbooks/secret.yaml");
    assert!(
        f[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read `playbooks/secret.yaml`"),
        "{f}"
    );
}

#[test]
fn hidden_files_and_playbook_tests_are_not_playbooks() {
    Test::new()
        .playbook("ok.yaml", &valid("ok"))
        .playbook(".draft.yaml", "not: [valid")
        // Checked as a test file (valid), never as a playbook (it has no `version`).
        .playbook("ok.test.yaml", "tests: []\n")
        .playbook(".git/config.yaml", "not: [valid")
        .args(["validate", "--color", "never"])
        .stderr("1 playbook valid\n")
        .run();
}

// --- the bundled library ----------------------------------------------------------------------

#[test]
fn bundled_playbooks_are_valid_without_warnings() {
    Test::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "validate",
            "playbooks",
            "--deny-warnings",
            "--color",
            "never",
        ])
        .stderr_contains("playbooks valid\n")
        .run();
}

#[test]
fn bundled_playbooks_list() {
    let output = Test::new()
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["list", "--playbooks", "playbooks", "--format", "json"])
        .run();
    let rows = output.json();
    let names: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for expected in [
        "disk-filling-up",
        "http-5xx-rate-high",
        "pod-crash-looping",
        "tls-cert-expiring",
        "pg-connections-saturated",
        "scrape-target-down",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for p in rows.as_array().unwrap() {
        assert!(p["owner"].is_string(), "{p}");
        assert!(p["drill_schedule"].is_string(), "{p}");
    }
}

// --- list, schema, completions, man, help ----------------------------------------------------

fn list_fixture() -> Test {
    Test::new()
        .playbook(
            "disk.yaml",
            &unindent(
                r#"
                version: 1
                name: disk-full
                title: Disk almost full
                owner: team-sre
                priority: 10
                match:
                  labels: ['alertname="DiskFull"']
                steps:
                  - id: df
                    shell: df -h
                  - id: tell
                    needs: [df]
                    notify: { console: { text: "{{ steps.df.stdout }}" } }
                drill:
                  schedule: "0 10 * * MON"
                  incident: { labels: { alertname: DiskFull } }
                "#,
            ),
        )
        .playbook("web/http.yaml", &valid("http-errors"))
        .playbook("broken.yaml", "version: 1\nname: broken\ntitle: a: b\n")
}

#[test]
fn list_table() {
    let output = list_fixture()
        .args(["list", "--color", "never"])
        .stderr(
            "warning: 1 playbook file with errors skipped (playbooks/broken.yaml); \
             run `irctl validate` for details\n",
        )
        .run();
    insta::assert_snapshot!(output.stdout);
}

#[test]
fn list_json() {
    let output = list_fixture()
        .args(["list", "--format", "json", "--color", "never"])
        .run();
    let rows = output.json();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let disk = &rows[0];
    assert_eq!(disk["name"], "disk-full");
    assert_eq!(disk["title"], "Disk almost full");
    assert_eq!(disk["owner"], "team-sre");
    assert_eq!(disk["priority"], 10);
    assert_eq!(disk["steps"], 2);
    assert_eq!(disk["drill_schedule"], "0 10 * * MON");
    assert_eq!(disk["file"], "playbooks/disk.yaml");
    assert_eq!(disk["provenance"]["path"], "playbooks/disk.yaml");
    assert_eq!(disk["provenance"]["blob"].as_str().unwrap().len(), 40);
    assert_eq!(rows[1]["name"], "http-errors");
    assert_eq!(rows[1]["file"], "playbooks/web/http.yaml");
    assert_eq!(rows[1]["drill_schedule"], Value::Null);
}

#[test]
fn list_without_playbooks_is_a_usage_error() {
    Test::new()
        .args(["list", "--color", "never"])
        .status(2)
        .stderr_contains("error: cannot load playbooks from `playbooks`")
        .run();
}

#[test]
fn schema_is_draft_07_json_schema() {
    let output = Test::new().args(["schema"]).run();
    let schema = output.json();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(schema["type"], "object");
    assert!(schema["properties"]["steps"].is_object(), "{schema}");
    let required: Vec<&str> = schema["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for field in ["version", "name", "title", "steps"] {
        assert!(
            required.contains(&field),
            "{field} not required: {required:?}"
        );
    }
}

/// The subcommands `irctl --help` lists (without `help`), each with the
/// long flags its own `--help` lists.
fn commands_and_flags() -> Vec<(String, Vec<String>)> {
    let help = Test::new().arg("--help").run().stdout;
    let commands: Vec<String> = help
        .split("Commands:\n")
        .nth(1)
        .expect("`irctl --help` lists commands")
        .lines()
        .take_while(|l| !l.trim().is_empty())
        // A command's line is indented by two; wrapped descriptions by more.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    commands
        .into_iter()
        .map(|command| {
            let help = Test::new().args([&command, "--help"]).run().stdout;
            let flags = help
                .lines()
                // An option's line: `  -f, --flag` or `      --flag`, not a wrapped description.
                .filter(|l| (2..=6).contains(&(l.len() - l.trim_start().len())))
                .map(str::trim_start)
                .filter(|l| l.starts_with('-'))
                .flat_map(|l| l.split([' ', ',', '=', '[', '<']))
                .filter(|w| w.len() > 2 && w.starts_with("--"))
                .map(str::to_string)
                .collect();
            (command, flags)
        })
        .collect()
}

/// Whether `shell` is installed; says so in the test output when it is not.
fn have(shell: &str) -> bool {
    let found = std::process::Command::new(shell)
        .arg("-c")
        .arg("exit 0")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED {shell} syntax check: {shell} not installed (apt-get install {shell})");
    }
    found
}

/// Runs `program args` with `stdin`; returns stdout, failing the test with
/// the whole output unless it succeeds.
fn sh(program: &str, args: &[&str], stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn completions_for_every_shell() {
    let commands = commands_and_flags();
    let script = |shell: &str| {
        let out = Test::new().args(["completions", shell]).run();
        let path = out.tempdir.path().join(format!("irctl.{shell}"));
        std::fs::write(&path, &out.stdout).expect("write script");
        (out.stdout.clone(), path, out)
    };

    // bash: the script parses, registers `_irctl` for `irctl`, and completing
    // offers every command after `irctl` and every flag after `irctl COMMAND --`.
    let (bash, path, _keep) = script("bash");
    let path = path.to_str().expect("utf-8 path");
    sh("bash", &["-n", path], "");
    let complete = |words: &[&str]| {
        let words: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
        let program = format!(
            "source '{path}'\n\
             complete -p irctl | grep -q -- '-F _irctl' || exit 3\n\
             COMP_WORDS=({words})\n\
             COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))\n\
             COMP_LINE=\"${{COMP_WORDS[*]}}\"\n\
             COMP_POINT=${{#COMP_LINE}}\n\
             _irctl irctl \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            words = words.join(" ")
        );
        sh("bash", &["--norc", "--noprofile"], &program)
    };
    let offered = complete(&["irctl", ""]);
    let offered: Vec<&str> = offered.lines().collect();
    for (command, flags) in &commands {
        assert!(
            offered.contains(&command.as_str()),
            "bash: `irctl <TAB>` lacks {command}: {offered:?}"
        );
        let flags_offered = complete(&["irctl", command, "--"]);
        let flags_offered: Vec<&str> = flags_offered.lines().collect();
        for flag in flags {
            assert!(
                flags_offered.contains(&flag.as_str()),
                "bash: `irctl {command} --<TAB>` lacks {flag}: {flags_offered:?}"
            );
        }
    }
    assert!(bash.contains("complete -F _irctl"), "{bash}");

    // zsh: a `#compdef` function that parses, lists every command, and
    // completes each command's flags in that command's own `_arguments`.
    let (zsh, path, _keep) = script("zsh");
    assert!(zsh.starts_with("#compdef irctl\n"), "{zsh}");
    if have("zsh") {
        sh("zsh", &["-n", path.to_str().expect("utf-8 path")], "");
    }
    for (command, flags) in &commands {
        assert!(
            zsh.contains(&format!("\n'{command}:")),
            "zsh lacks command {command}"
        );
        let section = zsh
            .split_once(&format!("({command})\n_arguments "))
            .and_then(|(_, rest)| rest.split_once("\n;;\n"))
            .map(|(section, _)| section)
            .unwrap_or_else(|| panic!("zsh has no `_arguments` for {command}"));
        for flag in flags {
            assert!(
                section.contains(&format!("{flag}=[")) || section.contains(&format!("{flag}[")),
                "zsh lacks {command} {flag}:\n{section}"
            );
        }
    }

    // fish: a script that parses, offers every command where no command is
    // given yet, and each command's flags under that command's condition.
    let (fish, path, _keep) = script("fish");
    if have("fish") {
        sh(
            "fish",
            &["--no-execute", path.to_str().expect("utf-8 path")],
            "",
        );
    }
    let lines: Vec<&str> = fish
        .lines()
        .filter(|l| l.starts_with("complete -c irctl "))
        .collect();
    for (command, flags) in &commands {
        assert!(
            lines.iter().any(|l| l
                .starts_with("complete -c irctl -n \"__fish_irctl_needs_command\"")
                && l.contains(&format!(" -a \"{command}\""))),
            "fish lacks command {command}"
        );
        // `using_subcommand timeline; and not __fish_seen_subcommand_from verify`
        // for a command with commands of its own.
        let own = |l: &str| {
            l.contains(&format!("__fish_irctl_using_subcommand {command}\""))
                || l.contains(&format!("__fish_irctl_using_subcommand {command}; and not"))
        };
        for flag in flags {
            let long = format!("-l {} ", flag.trim_start_matches('-'));
            assert!(
                lines
                    .iter()
                    .any(|l| own(l) && (l.contains(&long) || l.ends_with(long.trim_end()))),
                "fish lacks {command} {flag}"
            );
        }
    }

    Test::new()
        .args(["completions", "tcsh"])
        .status(2)
        .stderr_contains("invalid value 'tcsh'")
        .run();
}

#[test]
fn man_page_is_roff() {
    let output = Test::new().args(["man"]).run();
    assert!(output.stdout.contains(".TH irctl"), "{}", output.stdout);
    assert!(output.stdout.contains("validate"));
}

#[test]
fn validate_help_has_examples_and_exit_codes() {
    Test::new()
        .args(["validate", "--help"])
        .stdout_contains("Examples:\n  irctl validate\n")
        .stdout_contains("irctl validate playbooks/ --deny-warnings")
        .stdout_contains("--format github")
        .stdout_contains("Exit status: 0 valid, 1 findings, 2 usage error")
        .run();
}

#[test]
fn bad_flags_are_usage_errors() {
    Test::new()
        .args(["validate", "--frobnicate"])
        .status(2)
        .stdout("")
        .stderr_contains("unexpected argument '--frobnicate'")
        .run();
    Test::new()
        .args(["validate", "--format", "xml"])
        .status(2)
        .stderr_contains("invalid value 'xml' for '--format <FORMAT>'")
        .run();
    Test::new().status(2).stderr_contains("Usage: irctl").run();
}

/// Symlinks back up the tree (`x -> .`) are followed once, not multiplied at
/// every level: the walk ends at once and reads each playbook once.
#[cfg(unix)]
#[test]
fn symlink_loops_in_the_playbook_folder_are_walked_once() {
    let test = Test::new()
        .playbook("a.yaml", &valid("a"))
        .playbook("nested/b.yml", &valid("b"));
    let dir = test.path().join("playbooks");
    for link in ["x", "y", "z"] {
        std::os::unix::fs::symlink(".", dir.join(link)).unwrap();
    }
    std::os::unix::fs::symlink("..", dir.join("nested/up")).unwrap();
    test.args(["validate", "--color", "never"])
        .stderr("2 playbooks valid\n")
        .run();
}

/// The README's list of `validate` check codes is the list the checker
/// emits: every documented code is a literal in the source, and every code
/// the playbook checker and the drill lints emit is documented.
#[test]
fn readme_documents_every_check_code_and_no_other() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme.find("Checks, each with a stable code:").unwrap();
    let end = start + readme[start..].find("Every finding").unwrap();
    let documented: std::collections::BTreeSet<String> = readme[start..end]
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .map(str::to_string)
        .collect();
    let mut source = String::new();
    let mut emitting = String::new();
    // Tests written inside a playbook are checked by validate too.
    let mut files = vec![
        root.join("src/diagnostic.rs"),
        root.join("src/drill/lint.rs"),
        root.join("src/playbook/test_check.rs"),
    ];
    for e in std::fs::read_dir(root.join("src/playbook/validate")).unwrap() {
        files.push(e.unwrap().path());
    }
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        if !f.ends_with("diagnostic.rs") {
            emitting.push_str(&text);
        }
        source.push_str(&text);
    }
    for code in &documented {
        assert!(
            source.contains(&format!("\"{code}\"")),
            "README documents `{code}`, which validate never emits"
        );
    }
    // Every `"kebab-case"` string literal of the checkers is a code.
    for (i, _) in emitting.match_indices('"') {
        let rest = &emitting[i + 1..];
        let len = rest
            .find(|c: char| !(c.is_ascii_lowercase() || c == '-'))
            .unwrap_or(rest.len());
        let literal = &rest[..len];
        if rest[len..].starts_with('"') && literal.contains('-') && !literal.starts_with('-') {
            assert!(
                documented.contains(literal),
                "validate emits `{literal}`, which the README does not document"
            );
        }
    }
}

#[test]
fn every_schema_error_of_a_beginners_file_in_one_run() {
    // Five mistakes a newcomer makes at once: a misspelt field, a dash for
    // an underscore, a word where a number goes, a list where text goes,
    // and a step without its id. serde alone reports the first and stops.
    let f = assert_findings(
        &playbook(
            "
            priority: high
            steps:
              - id: check
                shell: echo a
                timout: 20s
              - id: page
                needs: [check]
                trigger: on-failure
                shell: [echo, b]
              - name: nameless
                shell: echo c
            ",
        ),
        &[
            ("error", "schema", 4, 11),
            ("error", "schema", 8, 5),
            ("error", "schema", 11, 14),
            ("error", "schema", 12, 12),
            ("error", "schema", 13, 5),
        ],
    );
    let said: Vec<(&str, &str)> = f
        .iter()
        .map(|d| {
            (
                d["message"].as_str().unwrap(),
                d["help"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("expected an integer, found `high`", ""),
            ("unknown field `timout`", "did you mean `timeout`?"),
            (
                "unknown value `on-failure`, expected one of `on_success`, `on_failure`, `always`",
                "did you mean `on_failure`?"
            ),
            ("expected a string, found a list", ""),
            ("missing required field `id`", ""),
        ]
    );
    // The human format shows all five too, each with its line and column.
    let text = human(&[(
        "p.yaml",
        &playbook(
            "
            priority: high
            steps:
              - id: check
                shell: echo a
                timout: 20s
              - id: page
                needs: [check]
                trigger: on-failure
                shell: [echo, b]
              - name: nameless
                shell: echo c
            ",
        ),
    )]);
    for at in [
        "p.yaml:4:11",
        "p.yaml:8:5",
        "p.yaml:11:14",
        "p.yaml:12:12",
        "p.yaml:13:5",
    ] {
        assert!(text.contains(at), "{at} missing:\n{text}");
    }
    assert!(text.contains("help: did you mean `on_failure`?"), "{text}");
}

#[test]
fn near_miss_enum_values_get_did_you_mean() {
    for (written, meant) in [
        ("on-failure", "on_failure"),
        ("On_Success", "on_success"),
        ("alway", "always"),
    ] {
        let f = assert_findings(
            &playbook(&format!(
                "
                steps:
                  - id: a
                    shell: echo a
                    trigger: {written}
                "
            )),
            &[("error", "schema", 7, 14)],
        );
        assert_eq!(
            f[0]["help"],
            format!("did you mean `{meant}`?"),
            "{written}"
        );
    }
    // Nested enums too: a PagerDuty action.
    let f = assert_findings(
        &playbook(
            "
            secrets: [PD]
            steps:
              - id: a
                notify:
                  pagerduty: { routing_key: '{{ secrets.PD }}', action: resolved, dedup_key: x }
            ",
        ),
        &[("error", "schema", 8, 61)],
    );
    assert_eq!(f[0]["help"], "did you mean `resolve`?");
}

#[test]
fn report_on_a_notification_is_a_warning() {
    assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
                report: true
              - id: tell
                notify: { console: { text: hi } }
                report: true
            ",
        ),
        &[("warning", "report-without-output", 10, 5)],
    );
}

#[test]
fn a_tests_undeclared_secret_has_the_documented_code() {
    // The README names one code for a secret missing from `secrets:`,
    // whether a template or a test names it.
    let f = assert_findings(
        &playbook(
            "
            steps:
              - id: a
                shell: echo a
            tests:
              - name: t
                secrets: { TOKEN: x }
                results: { a: ok }
            ",
        ),
        &[("error", "undeclared-secret", 9, 16)],
    );
    assert_eq!(
        f[0]["message"],
        "test `t`: secret `TOKEN` is not declared in `secrets:`"
    );
}
