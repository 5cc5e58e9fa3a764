//! The service catalog through the binary: what `irctl validate` reports
//! about catalog files (at file, line and column), how Location targets are
//! confined and bounded, the CODEOWNERS fallback, a catalog from Git, and
//! `incident.owner`/`incident.impacted` in templates, escaped like labels.

mod common;
#[path = "support/gitserver.rs"]
mod gitserver;
#[path = "support/wait.rs"]
mod wait;

use std::path::Path;

use common::Test;
use gitserver::Repo;

const PLAYBOOK: &str = "version: 1\nname: any\ntitle: Any\nmatch:\n  labels: ['alertname=~\".+\"']\ndrill:\n  incident: { title: d, labels: { alertname: X } }\nsteps:\n  - id: look\n    shell: \"true\"\n";

const HEAD: &str = "apiVersion: backstage.io/v1alpha1\n";

fn validate(catalog: &str) -> Test {
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .file("playbooks/catalog-info.yaml", catalog)
        .arg("validate")
}

/// `(code, severity, line, column)` of each finding in `catalog-info.yaml`.
fn findings(out: &common::Output) -> Vec<(String, String, u64, u64)> {
    out.json()
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            assert_eq!(d["file"], "playbooks/catalog-info.yaml", "{d}");
            (
                d["code"].as_str().unwrap().to_string(),
                d["severity"].as_str().unwrap().to_string(),
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn validate_points_at_every_catalog_mistake() {
    let catalog = format!(
        "{HEAD}kind: Group\nmetadata:\n  name: web\nspec:\n  type: team\n  members: [ghost]\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: shop\nspec:\n  type: service\n  owner: webb\n  dependsOn: [cart, 'component:']\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: cart\n  annotations:\n    irctl.dev/alert-selector: 'service=\"cart'\nspec:\n  type: service\n  dependsOn: [component:shop]\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: Shop\nspec:\n  owner: web\n\
         ---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n"
    );
    let out = validate(&catalog)
        .args(["--format", "json"])
        .status(1)
        .run();
    let got = findings(&out);
    let expect = [
        ("unknown-entity", "warning", 7), // members: ghost (org chart: a warning)
        ("unknown-entity", "error", 15),  // owner: webb, did you mean web
        ("catalog-ref", "error", 16),     // dependsOn: cart needs a kind; `component:` is malformed
        ("no-owner", "warning", 21),      // cart has no owner
        ("alert-selector", "error", 23),  // unterminated quote
        ("duplicate-entity", "error", 31), // Shop is shop
        ("catalog-schema", "error", 35),  // not a Backstage entity
    ];
    let text = serde_json::to_string_pretty(&out.json()).unwrap();
    for (code, sev, line) in expect {
        assert!(
            got.iter().any(|g| g.0 == code && g.1 == sev && g.2 == line),
            "no {code} {sev} at line {line}:\n{text}"
        );
    }
    assert!(text.contains("did you mean `web`?"), "{text}");
    assert!(
        text.contains("`cart` needs a kind here (e.g. `component:cart` or `resource:cart`)"),
        "{text}"
    );
    assert!(
        text.contains("the first definition, which is used, is at playbooks/catalog-info.yaml:9:1"),
        "{text}"
    );
}

#[test]
fn a_dependency_cycle_is_printed_whole_and_is_a_warning() {
    let catalog = format!(
        "{HEAD}kind: Group\nmetadata:\n  name: t\nspec:\n  type: team\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: a\nspec:\n  owner: t\n  dependsOn: [component:b]\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: b\nspec:\n  owner: t\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: c\nspec:\n  owner: t\n  dependencyOf: [component:b]\n  dependsOn: [component:a]\n"
    );
    validate(&catalog)
        .args(["--format", "human"])
        .stderr_contains("warning[dependency-cycle]: dependency cycle: component:default/a -> component:default/b -> component:default/c -> component:default/a")
        .stderr_contains("0 errors, 1 warning")
        .run();
}

#[test]
fn catalog_info_yaml_beside_the_playbooks_is_not_a_playbook() {
    let catalog = format!("{HEAD}kind: Group\nmetadata:\n  name: t\nspec:\n  type: team\n");
    validate(&catalog)
        .args(["--format", "human", "--deny-warnings"])
        .stderr("2 playbooks valid\n")
        .run();
    // `list` and `run` do not see it either.
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .file("playbooks/catalog-info.yaml", catalog)
        .args(["list", "--format", "json"])
        .stderr("")
        .run();
}

#[test]
fn location_targets_stay_inside_the_repository() {
    // A repository whose catalog lives beside (not inside) the playbook folder.
    let entry = format!(
        "{HEAD}kind: Location\nmetadata:\n  name: here\nspec:\n  targets:\n    - ../catalog/org.yaml\n    - ../../etc/passwd\n    - /etc/passwd\n    - https://example.com/catalog-info.yaml\n    - ./missing.yaml\n    - ../catalog/**/*.yml\n    - ../catalog/link.yaml\n"
    );
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        outside.path().join("stolen.yaml"),
        format!("{HEAD}kind: Group\nmetadata:\n  name: stolen\n"),
    )
    .unwrap();
    let t = Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .file("playbooks/catalog-info.yaml", entry)
        .file(
            "catalog/org.yaml",
            format!("{HEAD}kind: Group\nmetadata:\n  name: t\nspec:\n  type: team\n"),
        )
        .file(
            "catalog/deep/more.yml",
            format!(
                "{HEAD}kind: Group\nmetadata:\n  name: u\nspec:\n  type: team\n  children: [t]\n"
            ),
        );
    git_init(t.path());
    std::os::unix::fs::symlink(
        outside.path().join("stolen.yaml"),
        t.path().join("catalog/link.yaml"),
    )
    .unwrap();
    let out = t.args(["validate", "--format", "json"]).status(1).run();
    let text = out.stdout.clone();
    for needle in [
        "Location target `../../etc/passwd` is outside the repository; not read",
        "Location target `/etc/passwd` is outside the repository; not read",
        "Location target `https://example.com/catalog-info.yaml` is a URL",
        "Location target `./missing.yaml` does not exist (`playbooks/missing.yaml`)",
        "`catalog/link.yaml` leads outside",
    ] {
        assert!(text.contains(needle), "missing {needle:?}:\n{text}");
    }
    assert!(!text.contains("stolen"), "{text}");
    // The glob found `deep/more.yml`, whose `children: [t]` resolves: no finding there.
    assert!(!text.contains("catalog/deep/more.yml"), "{text}");
    let doc = Test::new()
        .current_dir(out.tempdir.path())
        .args(["who", "--format", "json", "--label", "alertname=X"])
        .status(1)
        .run()
        .json();
    assert!(
        doc["catalog"]
            .as_str()
            .unwrap()
            .contains("playbooks/catalog-info.yaml"),
        "{doc}"
    );
}

#[test]
fn hostile_catalog_files_fail_fast_with_a_location() {
    let bomb = format!(
        "{HEAD}kind: Group\nmetadata:\n  name: t\n  description: &a [x, x, x, x, x, x, x, x, x, x]\nspec:\n  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n  g: [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
    );
    let out = validate(&bomb).args(["--format", "json"]).status(1).run();
    assert!(
        out.stdout.contains("yaml-syntax") || out.stdout.contains("catalog-schema"),
        "{}",
        out.stdout
    );
    let huge = format!(
        "{HEAD}kind: Group\nmetadata:\n  name: t\n  description: \"{}\"\n",
        "x".repeat(3 * 1024 * 1024)
    );
    validate(&huge)
        .args(["--format", "json"])
        .status(1)
        .stdout_contains("is over the 2 MiB limit for a catalog file")
        .run();
    let not_yaml = "kind: [\n";
    let out = validate(not_yaml)
        .args(["--format", "json"])
        .status(1)
        .run();
    let f = &findings(&out)[0];
    assert!(
        f.2 >= 1 && ["yaml-syntax", "catalog-schema"].contains(&f.0.as_str()),
        "{f:?}"
    );
}

#[test]
fn a_location_loop_reads_each_file_once() {
    let a = format!(
        "{HEAD}kind: Location\nmetadata:\n  name: a\nspec:\n  targets: [./.catalog/b.yaml]\n---\n{HEAD}kind: Group\nmetadata:\n  name: t\nspec:\n  type: team\n"
    );
    let b = format!(
        "{HEAD}kind: Location\nmetadata:\n  name: b\nspec:\n  target: ../catalog-info.yaml\n"
    );
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .file("playbooks/catalog-info.yaml", a)
        .file("playbooks/.catalog/b.yaml", b)
        .args(["validate", "--deny-warnings"])
        .stderr("3 playbooks valid\n")
        .run();
}

fn git_init(dir: &Path) {
    for args in [
        &["init", "-q", "-b", "main"][..],
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "init",
        ],
    ] {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
}

#[test]
fn codeowners_owns_what_the_catalog_does_not() {
    let t = Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .file(
            ".github/CODEOWNERS",
            "* @acme/everyone\n/playbooks/ @acme/sre @jane\n/playbooks/db-*.yaml @acme/dba\n",
        )
        .file("CODEOWNERS", "* @acme/ignored\n");
    git_init(t.path());
    let doc = t
        .args([
            "who",
            "--format",
            "json",
            "--label",
            "alertname=X",
            "--label",
            "service=unknown",
        ])
        .run()
        .json();
    assert_eq!(doc["owner"]["ref"], "group:default/sre");
    assert_eq!(doc["owner"]["rule"], "codeowners");
    assert_eq!(doc["owner"]["in_catalog"], false);
    assert_eq!(
        doc["owner"]["why"],
        "`.github/CODEOWNERS` line 2 (`/playbooks/`) gives the playbook `playbooks/any.yaml` to `@acme/sre`"
    );
}

#[test]
fn templates_see_the_owner_and_impacted_services_escaped_like_labels() {
    let playbook = "version: 1\nname: tell\ntitle: Tell\nmatch:\n  labels: ['alertname=~\".+\"']\nsteps:\n  - id: say\n    shell: |\n      echo owner={{ incident.owner.ref }} title={{ incident.owner.title }}\n      {% for s in incident.impacted %}echo impacted={{ s.ref }}/{{ s.depth }}/{{ s.owner.ref }}\n      {% endfor %}\n";
    let catalog = format!(
        "{HEAD}kind: Group\nmetadata:\n  name: t\n  title: \"$(touch pwned); `touch pwned2`\"\nspec:\n  type: team\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: api\nspec:\n  owner: t\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: web\nspec:\n  owner: t\n  dependsOn: [component:api]\n"
    );
    let t = Test::new()
        .playbook("tell.yaml", playbook)
        .file("playbooks/catalog-info.yaml", catalog);
    let dir = t.path().to_path_buf();
    let out = t
        .args([
            "run",
            "--state-dir",
            "state",
            "-v",
            "--label",
            "alertname=X",
            "--label",
            "service=api",
        ])
        .run();
    let said = |line: &str| out.stderr.contains(&format!("| say: {line}\n"));
    assert!(
        said("owner=group:default/t title=$(touch pwned); `touch pwned2`"),
        "{}",
        out.stderr
    );
    assert!(
        said("impacted=component:default/web/1/group:default/t"),
        "{}",
        out.stderr
    );
    assert!(
        !dir.join("pwned").exists() && !dir.join("pwned2").exists(),
        "catalog text ran as a command"
    );
    // No catalog: `incident.owner` is null and `incident.impacted` empty, never undefined.
    let check = "version: 1\nname: tell\ntitle: Tell\nmatch:\n  labels: ['alertname=~\".+\"']\nsteps:\n  - id: say\n    shell: echo {{ incident.owner is none }} {{ incident.impacted | length }}\n";
    Test::new()
        .playbook("tell.yaml", check)
        .args([
            "run",
            "--state-dir",
            "state",
            "-v",
            "--label",
            "alertname=X",
        ])
        .stderr_contains("| say: True 0\n")
        .run();
    // `validate` knows both fields (a typo would be `unknown-field`).
    Test::new()
        .playbook("tell.yaml", check)
        .args(["validate", "--format", "json"])
        .stdout_contains("no-drill")
        .run();
}

#[test]
fn a_catalog_from_git_at_a_ref_and_beside_git_playbooks() {
    let repo = Repo::new();
    repo.write("catalog-info.yaml", &format!("{HEAD}kind: Location\nmetadata:\n  name: all\nspec:\n  targets: [./org/teams.yaml]\n---\n{HEAD}kind: Component\nmetadata:\n  name: api\nspec:\n  owner: old\n"));
    repo.write("org/teams.yaml", &format!("{HEAD}kind: Group\nmetadata:\n  name: old\n---\n{HEAD}kind: Group\nmetadata:\n  name: new\n"));
    repo.write("playbooks/any.yaml", PLAYBOOK);
    repo.write("playbooks/catalog-info.yaml", &format!("{HEAD}kind: Location\nmetadata:\n  name: up\nspec:\n  targets: [../catalog-info.yaml]\n"));
    repo.commit("v1");
    repo.git(&["tag", "v1"]);
    repo.write("catalog-info.yaml", &format!("{HEAD}kind: Location\nmetadata:\n  name: all\nspec:\n  targets: [./org/teams.yaml]\n---\n{HEAD}kind: Component\nmetadata:\n  name: api\nspec:\n  owner: new\n"));
    repo.commit("v2");
    repo.push();
    let home = repo.home();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let who = |extra: &[&str]| {
        Test::new()
            .env("HOME", &s(&home))
            .env("XDG_CACHE_HOME", &s(&home.join(".cache")))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .playbook("any.yaml", PLAYBOOK)
            .args([
                "who",
                "--format",
                "json",
                "--label",
                "alertname=X",
                "--label",
                "service=api",
            ])
            .args(extra)
            .run()
            .json()
    };
    let at_v1 = format!("{}@v1", repo.file_url());
    assert_eq!(
        who(&["--catalog", &at_v1])["owner"]["ref"],
        "group:default/old"
    );
    assert_eq!(
        who(&["--catalog", &repo.file_url()])["owner"]["ref"],
        "group:default/new"
    );
    // Playbooks from the repository find the catalog beside them at the same ref.
    let doc = who(&["--repo", &repo.file_url(), "--ref", "v1"]);
    assert_eq!(doc["owner"]["ref"], "group:default/old");
    let origin = doc["catalog"].as_str().unwrap();
    assert!(
        origin.ends_with(": `playbooks/catalog-info.yaml`"),
        "{origin}"
    );
}

#[test]
fn a_missing_catalog_path_is_a_usage_error_for_who_and_a_warning_for_run() {
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .args(["who", "--label", "alertname=X", "--catalog", "nope/catalog"])
        .status(2)
        .stderr_contains("`--catalog nope/catalog`: no such file or directory")
        .run();
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .args([
            "run",
            "--state-dir",
            "state",
            "--label",
            "alertname=X",
            "--catalog",
            "nope/catalog",
        ])
        .stderr_contains("warning: the service catalog was not read, so the incident has no owner")
        .run();
}

#[test]
fn a_resumed_run_sees_the_owner_the_first_attempt_saw() {
    let playbook = "version: 1\nname: tell\ntitle: Tell\nmatch:\n  labels: ['alertname=~\".+\"']\nsteps:\n  - id: gate\n    shell: test -f marker\n  - id: say\n    needs: [gate]\n    shell: echo owner={{ incident.owner.ref }} impacted={{ incident.impacted | length }}\n";
    let catalog = format!(
        "{HEAD}kind: Group\nmetadata:\n  name: t\nspec:\n  type: team\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: api\nspec:\n  owner: t\n\
         ---\n{HEAD}kind: Component\nmetadata:\n  name: web\nspec:\n  owner: t\n  dependsOn: [component:api]\n"
    );
    let out = Test::new()
        .playbook("tell.yaml", playbook)
        .file("playbooks/catalog-info.yaml", catalog)
        .args([
            "run",
            "--state-dir",
            "state",
            "--label",
            "alertname=X",
            "--label",
            "service=api",
        ])
        .status(1)
        .run();
    let dir = out.tempdir.path();
    let runs: Vec<_> = std::fs::read_dir(dir.join("state/runs"))
        .unwrap()
        .flatten()
        .collect();
    let id = runs[0].file_name().to_string_lossy().into_owned();
    // The catalog changes (here: goes away); the run continues with what it saw.
    std::fs::remove_file(dir.join("playbooks/catalog-info.yaml")).unwrap();
    std::fs::write(dir.join("marker"), "").unwrap();
    Test::new()
        .current_dir(dir)
        .args(["resume", "--state-dir", "state", "-v", &id])
        .stderr_contains("| say: owner=group:default/t impacted=1\n")
        .run();
}
