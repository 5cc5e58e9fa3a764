//! `irctl test` end to end: the real binary on temporary playbooks and their
//! tests, the bundled playbooks' own tests, and proof that a test run never
//! touches the world (no process, no request, no timeline in the state dir).

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Test, unindent};
use receiver::Receiver;

/// A playbook with every kind of step, a retry, a `when` and an escalation.
const DEMO: &str = r#"
version: 1
name: demo
title: Demo service is down
owner: team-demo
match:
  labels: [alertname="DemoDown"]
inputs:
  host: { default: "{{ incident.labels.instance }}" }
secrets: [HOOK]
steps:
  - id: check
    shell: echo checking {{ inputs.host }}
    retry: { attempts: 3, backoff: 30s }
  - id: api
    http:
      method: POST
      url: "https://api.example/hosts/{{ inputs.host }}/drain"
      json: { reason: "{{ incident.labels.alertname }}" }
  - id: fix
    needs: [check]
    when: steps.check.stdout | trim == "broken"
    shell: systemctl restart demo
  - id: page
    needs: [check, api]
    trigger: on_failure
    notify:
      slack: { webhook: "{{ secrets.HOOK }}", text: "{{ inputs.host }} is down: {{ steps.check.stderr | trim }}" }
drill:
  incident: { labels: { alertname: DemoDown, instance: web-1 } }
"#;

/// Replaces durations, which vary from run to run, and the table padding that follows them.
fn filtered(text: &str) -> String {
    let re = regex::Regex::new(r"\d+ms").unwrap();
    re.replace_all(text, "[ms]")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn demo() -> Test {
    Test::new().playbook("demo.yaml", &unindent(DEMO))
}

/// The demo playbook with `tests` (unindented) as its sibling `demo.test.yaml`.
fn demo_tests(tests: &str) -> Test {
    demo().playbook("demo.test.yaml", &unindent(tests))
}

/// The demo playbook with `tests` appended as its inline `tests:`.
fn demo_inline(tests: &str) -> Test {
    Test::new().playbook("demo.yaml", &format!("{}{tests}", unindent(DEMO)))
}

#[test]
fn passing_tests_print_a_table_and_exit_zero() {
    let out = demo_tests(
        r#"
        tests:
          - name: healthy host
            results:
              check: { stdout: "fine\n" }
              api: { http_status: 202 }
            expect:
              status: succeeded
              steps:
                check: { status: succeeded, command: "echo checking web-1" }
                api:
                  request:
                    method: POST
                    url: https://api.example/hosts/web-1/drain
                    body: { equals: '{"reason":"DemoDown"}' }
                    headers: { Content-Type: application/json }
                fix: { status: skipped, reason: { regex: "^when was false" } }
                page: skipped
        "#,
    )
    .args(["test"])
    .run();
    insta::assert_snapshot!(filtered(&out.stdout), @r"
     PLAYBOOK  TEST          RESULT  DURATION
    ───────────────────────────────────────────
     demo      healthy host  ok      [ms]

    1 test: 1 passed, 0 failed, 0 broken in [ms]
    ");
}

#[test]
fn a_failing_test_prints_expected_against_actual() {
    let out = demo_tests(
        r#"
        tests:
          - name: the page names the host
            incident: { labels: { alertname: DemoDown, instance: web-2 } }
            results:
              check: { exit_code: 3, stderr: "connection refused\n" }
              api: ok
              page: ok
            expect:
              status: succeeded
              steps:
                check: { status: failed, attempts: 1 }
                fix: succeeded
                page:
                  notification: { contains: "web-1 is down" }
                  request: { url: { regex: "^https://hooks\\.slack\\.com/" } }
        "#,
    )
    .args(["test"])
    .status(1)
    .run();
    insta::assert_snapshot!(filtered(&out.stdout));
}

#[test]
fn retries_are_answered_per_attempt_without_waiting_for_backoff() {
    let started = Instant::now();
    demo_tests(
        r#"
        tests:
          - name: third time lucky
            results:
              check: [fail, { exit_code: 2 }, { stdout: "broken\n" }]
              api: ok
              fix: ok
            expect:
              status: succeeded
              steps:
                check: { status: succeeded, attempts: 3 }
                fix: { status: succeeded, command: "systemctl restart demo" }
                page: skipped
          - name: the same failure on every attempt
            results:
              check: { exit_code: 1, stderr: "no route to host\n" }
              api: ok
              page: ok
            expect:
              status: failed
              steps:
                check: { status: failed, attempts: 3, reason: "exited with status 1" }
                page: { status: succeeded, notification: "web-1 is down: no route to host" }
        "#,
    )
    .args(["test"])
    .stdout_contains("2 tests: 2 passed, 0 failed, 0 broken")
    .run();
    // Two retries with a 30s backoff each would take a minute for real.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn a_timeout_result_times_the_step_out_and_escalates() {
    demo_tests(
        r#"
        tests:
          - name: hanging check
            results:
              check: timeout
              api: { http_status: 200 }
              page: ok
            expect:
              status: failed
              steps:
                check: { status: timed_out, attempts: 3, reason: "timed out after 5m00s" }
                fix: { status: skipped, reason: "need check timed out" }
                page: succeeded
        "#,
    )
    .args(["test"])
    .stdout_contains(" demo      hanging check  ok ")
    .run();
}

#[test]
fn http_results_decide_success_and_retries() {
    demo_tests(r#"
        tests:
          - name: the drain API refuses
            results:
              check: ok
              api: { http_status: 409, json: { error: already draining } }
              page: { http_status: 404, body: no_service }
            expect:
              status: failed
              steps:
                api: { status: failed, attempts: 1, reason: 'api.example answered HTTP 409 (expected 2xx): {"error":"already draining"}' }
                page:
                  status: failed
                  reason: { contains: "the webhook was revoked or is wrong" }
                  request: { method: POST, url: test-secret-HOOK }
        "#)
        .args(["test"])
        .stdout_contains("1 test: 1 passed")
        .run();
}

#[test]
fn a_step_without_a_canned_result_is_an_error_not_a_pass() {
    let out = demo_tests(
        r#"
        tests:
          - name: forgot the fix
            results:
              check: { stdout: "broken\n" }
              api: ok
          - name: too few attempts
            results:
              check: [fail]
              api: ok
              page: ok
        "#,
    )
    .args(["test"])
    .status(2)
    .run();
    assert!(
        out.stdout.contains(
            "error: step `fix` ran but the test has no canned result for it (add `results: { fix: ok }`)"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "error: step `check` made attempt 2 but the test gives canned results for 1 attempt"
        ),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("2 tests: 0 passed, 0 failed, 2 broken"));
}

#[test]
fn a_bad_test_file_points_at_file_line_and_column() {
    demo_tests(r#"
        tests:
          - name: typo
            results:
              chek: ok
            expect:
              steps:
                check: { command: { regex: "a(" } }
        "#)
        .args(["test"])
        .status(2)
        .stderr_contains(
            "error[test-unknown-step]: test `typo`: canned result for unknown step `chek`\n --> playbooks/demo.test.yaml:4:13\n",
        )
        .stderr_contains("= help: did you mean `check`?")
        .stderr_contains("error[invalid-regex]")
        .stderr_contains(" --> playbooks/demo.test.yaml:7:36\n")
        .stderr_contains("2 errors in playbooks or their tests; no test was run")
        .run();
}

#[test]
fn an_unknown_field_in_a_test_file_is_a_located_error() {
    demo_tests("tests:\n  - name: x\n    expected: {}\n")
        .args(["test"])
        .status(2)
        .stderr_contains(
            "error[test-schema]: unknown field `expected`\n --> playbooks/demo.test.yaml:3:5",
        )
        .stderr_contains("did you mean `expect`?")
        .run();
}

#[test]
fn inline_tests_run_and_are_checked_by_validate() {
    demo_inline(
        "tests:\n  - name: inline\n    results: { check: ok, api: ok }\n    expect: { status: succeeded }\n",
    )
    .args(["test"])
    .stdout_contains(" demo      inline  ok ")
    .run();
    demo_inline("tests:\n  - name: inline\n    results: { chek: ok }\n")
        .args(["validate"])
        .status(1)
        .stderr_contains(
            "error[test-unknown-step]: test `inline`: canned result for unknown step `chek`",
        )
        .run();
}

#[test]
fn validate_checks_sibling_test_files() {
    demo_tests("tests:\n  - name: x\n    inputs: { hostt: a }\n")
        .args(["validate"])
        .status(1)
        .stderr_contains(
            "error[unknown-input]: test `x`: input `hostt` is not declared in `inputs:`",
        )
        .stderr_contains("--> playbooks/demo.test.yaml:3:15")
        .stderr_contains("help: did you mean `host`?")
        .run();
}

#[test]
fn a_test_file_without_its_playbook_is_an_error() {
    demo()
        .playbook("dmeo.test.yaml", "tests: []\n")
        .args(["test"])
        .status(2)
        .stderr_contains(
            "error[test-file]: `playbooks/dmeo.test.yaml` has no playbook next to it (`playbooks/dmeo.yaml`)",
        )
        .run();
}

#[test]
fn junit_report_parses_with_one_testcase_per_test() {
    let out = demo_tests(
        r#"
        tests:
          - name: passes
            results: { check: ok, api: ok }
            expect: { status: succeeded }
          - name: fails <on purpose>
            results: { check: ok, api: ok }
            expect: { status: failed }
          - name: broken
            results: { check: ok }
        "#,
    )
    .args(["test", "--report", "junit.xml"])
    .status(2)
    .run();
    let xml = std::fs::read_to_string(out.tempdir.path().join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    assert_eq!(root.attribute("tests"), Some("3"));
    assert_eq!(root.attribute("failures"), Some("1"));
    assert_eq!(root.attribute("errors"), Some("1"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["passes", "fails <on purpose>", "broken"]);
    assert!(
        cases
            .iter()
            .all(|c| c.attribute("classname") == Some("irctl.test.demo"))
    );
    assert_eq!(cases[0].children().filter(|n| n.is_element()).count(), 0);
    let failure = cases[1]
        .children()
        .find(|n| n.has_tag_name("failure"))
        .unwrap();
    assert_eq!(
        failure.attribute("message"),
        Some("run status: expected failed")
    );
    assert!(failure.text().unwrap().contains("+ actual:   succeeded"));
    let error = cases[2]
        .children()
        .find(|n| n.has_tag_name("error"))
        .unwrap();
    let message = error.attribute("message").unwrap();
    assert!(
        message.contains("step `api` ran but the test has no canned result for it"),
        "{message}"
    );
}

#[test]
fn coverage_names_the_branches_no_test_exercised() {
    let out = demo_tests("tests:\n  - name: happy\n    results: { check: ok, api: ok }\n")
        .args(["test", "--coverage"])
        .run();
    let coverage = &out.stdout[out.stdout.find("coverage:").unwrap()..];
    insta::assert_snapshot!(filtered(coverage), @r#"
    coverage: 4 of 7 steps and branches exercised (57%)
     PLAYBOOK  STEP  NOT EXERCISED     WHY
    ───────────────────────────────────────────────────────────────────────────────────────────
     demo      fix   runs              no test ran this step
     demo      fix   when true         `steps.check.stdout | trim == "broken"` was never true
     demo      page  on_failure fires  no test made one of its needs fail
    "#);
}

#[test]
fn nothing_runs_for_real() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let test = Test::new();
    let marker = test.path().join("marker");
    let state = test.path().join("state");
    let playbook = unindent(&format!(
        r#"
        version: 1
        name: effects
        title: Side effects everywhere
        secrets: [HOOK]
        steps:
          - id: touch
            shell: touch {marker}
          - id: argv
            command: [touch, "{marker}.argv"]
          - id: post
            http: {{ method: POST, url: "{url}" }}
          - id: notify
            notify:
              slack: {{ webhook: "{{{{ secrets.HOOK }}}}", text: hello }}
        drill:
          incident: {{ labels: {{ alertname: Effects }} }}
        "#,
        marker = marker.display(),
        url = receiver.url("/effect"),
    ));
    let tests = unindent(&format!(
        r#"
        tests:
          - name: every step answered from canned results
            secrets: {{ HOOK: "{hook}" }}
            results: {{ touch: ok, argv: ok, post: ok, notify: ok }}
            expect:
              status: succeeded
              steps:
                touch: {{ status: succeeded, command: "touch {marker}" }}
                post: {{ request: {{ url: "{url}" }} }}
                notify: {{ request: {{ url: "{hook}" }}, notification: hello }}
        "#,
        marker = marker.display(),
        url = receiver.url("/effect"),
        hook = receiver.url("/hook"),
    ));
    test.playbook("effects.yaml", &playbook)
        .playbook("effects.test.yaml", &tests)
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .args(["test"])
        .stdout_contains("1 test: 1 passed")
        .run();
    assert!(!marker.exists(), "the shell step ran for real");
    assert!(!Path::new(&format!("{}.argv", marker.display())).exists());
    assert!(receiver.requests().is_empty(), "a request was sent");
    assert!(!state.exists(), "a timeline was written to the state dir");
}

#[test]
fn the_bundled_playbooks_pass_their_tests_and_validate_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("playbooks");
    let out = Test::new()
        .args(["test", "--coverage", "--playbooks"])
        .arg(&root)
        .run();
    for name in [
        "disk-filling-up",
        "http-5xx-rate-high",
        "pg-connections-saturated",
        "pod-crash-looping",
        "scrape-target-down",
        "tls-cert-expiring",
    ] {
        assert!(
            out.stdout.contains(&format!(" {name} ")),
            "no tests of {name}:\n{}",
            out.stdout
        );
    }
    assert!(out.stdout.contains(" 0 failed, 0 broken"), "{}", out.stdout);
    Test::new()
        .args(["validate", "--deny-warnings"])
        .arg(&root)
        .run();
}

#[test]
fn selecting_playbooks_by_name() {
    demo_tests("tests:\n  - name: happy\n    results: { check: ok, api: ok }\n")
        .args(["test", "dem"])
        .status(2)
        .stderr_contains("error: no valid playbook `dem` in `playbooks`; did you mean `demo`?")
        .run();
    demo()
        .args(["test", "demo"])
        .status(2)
        .stderr_contains("warning: playbook `demo` has no tests")
        .stderr_contains("error: no tests found in `playbooks`")
        .run();
}

#[test]
fn the_schema_describes_tests() {
    let out = Test::new().args(["schema"]).run();
    let schema = out.json();
    let text = schema.to_string();
    assert!(text.contains("Canned results by step id"), "{text}");
    assert!(schema.pointer("/properties/tests").is_some());
}

/// A Git source is refused, not silently replaced by `./playbooks`, and the
/// refusal does not echo credentials.
#[test]
fn a_git_source_is_refused_without_echoing_credentials() {
    Test::new()
        .args(["test", "--repo", "https://example.invalid/pb.git"])
        .status(2)
        .stderr_contains("cannot use `--repo https://example.invalid/pb.git`")
        .run();
    // An exported `IRCTL_REPO` is refused the same way, not replaced by
    // `./playbooks`, and its credentials are not echoed.
    let out = Test::new()
        .args(["test"])
        .env("IRCTL_REPO", "https://ops:hunter2@example.invalid/pb.git")
        .status(2)
        .stderr_contains("cannot use `--repo https://example.invalid/pb.git`")
        .run();
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    // A credential on the command line is refused before anything else.
    let out = Test::new()
        .args([
            "test",
            "--repo",
            "https://ops:hunter2@example.invalid/pb.git",
        ])
        .status(2)
        .stderr_contains("`--repo` carries a password")
        .run();
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

/// `irctl test --help` offers only what `test` uses: a playbook directory,
/// none of the Git source flags it refuses.
#[test]
fn test_help_offers_no_git_source() {
    let out = Test::new()
        .args(["test", "--help"])
        .stdout_contains("--playbooks <DIR>")
        .run();
    for flag in [
        "--repo <",
        "--ref <",
        "--repo-path",
        "--offline",
        "--fetch-timeout",
        "--cache-dir",
        "IRCTL_REPO",
    ] {
        assert!(!out.stdout.contains(flag), "`{flag}` in:\n{}", out.stdout);
    }
}

/// A catalog whose platform group has a mixed-case name and a hostile
/// title (a terminal escape, Slack markup), a web service it owns, and a
/// shop service that depends on it.
const CATALOG: &str = "apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: Platform.Ops
spec:
  type: team
  profile:
    displayName: \"Ops \\e[2J<!channel> *team*\"
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: shop
spec:
  type: team
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: web
spec:
  type: service
  owner: Platform.Ops
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout
spec:
  type: service
  owner: shop
  dependsOn: [component:web]
";

const TEAMS: &str = "version: 1
secrets: [SLACK_OPS, PD_OPS, HOOK_SHOP]
teams:
  group:default/platform.ops:
    channels:
      - slack: SLACK_OPS
      - pagerduty: PD_OPS
  shop:
    channels:
      - webhook: HOOK_SHOP
";

const ROUTED: &str = r#"version: 1
name: web
title: Web is down
match: { labels: ['alertname="WebDown"'] }
steps:
  - id: tell_owner
    notify: { team: owner, text: "{{ team.title }} owns {{ incident.labels.alertname }}" }
  - id: tell_impacted
    notify: { team: impacted, text: "{{ team.title }}: {{ team.services | join(', ') }}" }
  - id: look
    shell: echo looking
"#;

/// The routed playbook with the teams file, its catalog beside it when `catalog`.
fn routed(catalog: bool, tests: &str) -> Test {
    let test = Test::new()
        .file("playbooks/teams.yaml", TEAMS)
        .playbook("web.yaml", ROUTED)
        .playbook("web.test.yaml", &unindent(tests));
    if catalog {
        test.file("playbooks/catalog-info.yaml", CATALOG)
    } else {
        test
    }
}

#[test]
fn team_steps_reach_the_teams_a_run_would_and_nothing_is_sent() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let test = Test::new();
    let state = test.path().join("state");
    let tests = format!(
        r#"
        tests:
          - name: the owner and the impacted shop are told
            incident: {{ labels: {{ alertname: WebDown, service: web }} }}
            secrets: {{ SLACK_OPS: "{slack}", HOOK_SHOP: "{hook}" }}
            results: {{ tell_owner: ok, tell_impacted: ok, look: ok }}
            expect:
              steps:
                tell_owner:
                  teams: [group:default/Platform.Ops]
                  channels: [slack:SLACK_OPS]
                  notification: {{ contains: "owns WebDown" }}
                tell_impacted: {{ teams: [shop], channels: ["webhook:HOOK_SHOP"] }}
        "#,
        slack = receiver.url("/slack"),
        hook = receiver.url("/hook"),
    );
    let out = routed(true, &tests)
        // The test's secrets are the whole world: the environment's are never read.
        .env("IRCTL_SECRET_PD_OPS", "from-the-environment")
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .env("XDG_STATE_HOME", state.to_str().unwrap())
        .args(["test"])
        .stdout_contains("1 test: 1 passed")
        .stderr_contains(
            "warning: web › the owner and the impacted shop are told: step `tell_owner`: team `group:default/platform.ops` pagerduty: secret PD_OPS not set, skipped",
        )
        .run();
    assert!(receiver.requests().is_empty(), "a message was sent");
    assert!(!state.exists(), "a timeline or impact notice was written");
    assert!(!out.stdout.contains('\u{1b}') && !out.stderr.contains('\u{1b}'));
}

#[test]
fn a_wrong_team_expectation_prints_expected_against_actual() {
    let out = routed(
        true,
        r#"
        tests:
          - name: the shop owns it
            incident: { labels: { alertname: WebDown, service: web } }
            secrets: { SLACK_OPS: https://hooks.example/ops }
            results: { tell_owner: ok, tell_impacted: ok, look: ok }
            expect:
              steps:
                tell_owner: { teams: [shop], channels: [slack:SLACK_OPS, pagerduty:PD_OPS] }
        "#,
    )
    .args(["test"])
    .status(1)
    .run();
    let expected = "
  step `tell_owner` teams
    - expected: group:default/shop
    + actual:   group:default/platform.ops
                (step `tell_owner`: team `group:default/platform.ops` pagerduty: secret PD_OPS not set, skipped)
  step `tell_owner` channels
    - expected: pagerduty:PD_OPS, slack:SLACK_OPS
    + actual:   slack:SLACK_OPS
                (step `tell_owner`: team `group:default/platform.ops` pagerduty: secret PD_OPS not set, skipped)
  what happened:
    tell_owner     succeeded → group:default/platform.ops
    tell_impacted  succeeded → nobody
    look           succeeded
    run succeeded";
    assert!(out.stdout.contains(expected), "{}", out.stdout);
    assert!(
        out.stdout.contains("--> playbooks/web.test.yaml:2:11"),
        "{}",
        out.stdout
    );
}

#[test]
fn without_a_catalog_owner_reaches_nobody_and_the_test_says_so() {
    let tests = r#"
        tests:
          - name: nobody owns it
            incident: { labels: { alertname: WebDown, service: web } }
            secrets: { SLACK_OPS: https://hooks.example/ops, PD_OPS: key }
            results: { tell_owner: ok, tell_impacted: ok, look: ok }
            expect:
              status: succeeded
              steps:
                tell_owner: { status: succeeded, teams: [], channels: [] }
                tell_impacted: { teams: [] }
        "#;
    routed(false, tests)
        .args(["test"])
        .stdout_contains("1 test: 1 passed")
        .stderr_contains("warning: web › nobody owns it: step `tell_owner`: the catalog names no owner for this incident, so nobody was told")
        .run();
    // `--catalog` (or IRCTL_CATALOG) outside the playbook folder aims them as a run would.
    let out = routed(false, tests)
        .file("org/catalog.yaml", CATALOG)
        .env("IRCTL_CATALOG", "org/catalog.yaml")
        .args(["test"])
        .status(1)
        .run();
    assert!(
        out.stdout
            .contains("    - expected: nobody\n    + actual:   group:default/platform.ops"),
        "{}",
        out.stdout
    );
    routed(false, tests)
        .file("org/catalog.yaml", CATALOG)
        .args(["test", "--catalog", "org/missing.yaml"])
        .status(2)
        .stderr_contains("cannot read the service catalog")
        .run();
}

#[test]
fn team_expectations_are_checked_at_file_line_and_column() {
    let tests = "tests:
  - name: bad
    incident: { labels: { alertname: WebDown } }
    results: { tell_owner: ok, tell_impacted: ok, look: ok }
    expect:
      steps:
        tell_owner:
          teams: [\"group:default/x\\e[31m\"]
          channels: [sms:PHONE]
        look: { teams: [shop] }
";
    for args in [&["validate"][..], &["test"]] {
        let out = Test::new()
            .file("playbooks/teams.yaml", TEAMS)
            .file("playbooks/catalog-info.yaml", CATALOG)
            .playbook("web.yaml", ROUTED)
            .playbook("web.test.yaml", tests)
            .args(args)
            .status(if args == ["test"] { 2 } else { 1 })
            .run();
        let err = &out.stderr;
        assert!(!err.contains('\u{1b}'), "{err}");
        for (at, what) in [
            ("playbooks/web.test.yaml:8:19", "step `tell_owner` teams:"),
            ("playbooks/web.test.yaml:9:22", "unknown channel kind `sms`"),
            (
                "playbooks/web.test.yaml:10:17",
                "step `look` has no `notify: { team }` to check with `teams`",
            ),
        ] {
            assert!(err.contains(at), "no finding at {at}:\n{err}");
            assert!(err.contains(what), "no `{what}`:\n{err}");
        }
    }
    // A misspelt channel secret would leave its channel skipped: it is an
    // error, the secrets of every team channel being the ones a test may add.
    let out = routed(
        true,
        r#"
        tests:
          - name: typo
            incident: { labels: { alertname: WebDown } }
            secrets: { SLAK_OPS: x }
            results: { tell_owner: ok, tell_impacted: ok, look: ok }
        "#,
    )
    .args(["validate"])
    .status(1)
    .run();
    assert!(
        out.stderr.contains(
            "secret `SLAK_OPS` is neither declared in `secrets:` nor read by a team channel"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("playbooks/web.test.yaml:4:16"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `SLACK_OPS`?"),
        "{}",
        out.stderr
    );
}

#[test]
fn coverage_names_a_team_step_that_reached_no_team() {
    routed(
        false,
        r#"
        tests:
          - name: nobody owns it
            incident: { labels: { alertname: WebDown } }
            results: { tell_owner: ok, tell_impacted: ok, look: ok }
        "#,
    )
    .args(["test", "--coverage"])
    .stdout_contains("reaches a team")
    .stdout_contains("no test's incident had an owner team to tell")
    .run();
}

#[test]
fn the_schema_describes_team_expectations() {
    let text = Test::new().args(["schema"]).run().json().to_string();
    assert!(
        text.contains("The teams a `notify: { team }` step sent its message to"),
        "{text}"
    );
    assert!(text.contains("`kind:SECRET_NAME`"), "{text}");
}
