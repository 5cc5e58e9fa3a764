//! `irctl who`: the owning team and why, impacted services and their
//! teams, and the playbooks that would run — on the bundled example catalog
//! and on small catalogs built for one rule each.

mod common;

use std::path::Path;

use common::Test;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `irctl who` against the bundled playbooks (and so the example catalog).
fn bundled_who(incident: &str, format: &str) -> Test {
    Test::new()
        .current_dir(root())
        .args(["who", "--format", format, "--incident", incident])
}

#[test]
fn disk_filling_is_the_platform_teams_and_impacts_the_shop() {
    let out = bundled_who("examples/incidents/disk-filling.json", "json").run();
    let doc = out.json();
    assert_eq!(doc["owner"]["ref"], "group:default/platform");
    assert_eq!(doc["owner"]["title"], "Platform team");
    assert_eq!(doc["owner"]["rule"], "platform");
    assert_eq!(doc["owner"]["email"], "platform@example.com");
    assert_eq!(doc["service"]["ref"], "resource:default/node-hosts");
    assert_eq!(doc["service"]["rule"], "alert-selector");
    let impacted: Vec<(String, u64, String)> = doc["impacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["ref"].as_str().unwrap().to_string(),
                i["depth"].as_u64().unwrap(),
                i["owner"]["ref"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let has = |r: &str, d: u64, o: &str| impacted.contains(&(r.into(), d, o.into()));
    assert!(
        has("resource:default/orders-db", 1, "group:default/platform"),
        "{impacted:?}"
    );
    assert!(
        has("component:default/payments", 2, "group:default/payments"),
        "{impacted:?}"
    );
    assert!(
        has("component:default/checkout", 3, "group:default/shop"),
        "{impacted:?}"
    );
    // The depth limit (3 in the example) stops before the storefront.
    assert!(
        !impacted
            .iter()
            .any(|i| i.0 == "component:default/storefront"),
        "{impacted:?}"
    );
    assert_eq!(doc["playbooks"][0]["playbook"], "disk-filling-up");

    let out = bundled_who("examples/incidents/disk-filling.json", "table").run();
    for line in [
        "owner:    Platform team (group:default/platform), by rule `platform`",
        "reached:  channels slack:SLACK_PLATFORM_WEBHOOK, pagerduty:PD_PLATFORM_ROUTING_KEY · e-mail platform@example.com · PagerDuty service PPLATFM",
        "service:  Node hosts (resource:default/node-hosts), by rule `alert-selector`",
        "  - `resource:default/node-hosts` is a Resource, so the platform team `group:default/platform` owns it",
        "playbooks: disk-filling-up",
        "routing:  route-owner (run beside it)",
    ] {
        assert!(
            out.stdout.contains(line),
            "missing {line:?}:\n{}",
            out.stdout
        );
    }
}

#[test]
fn a_service_label_names_the_component_and_its_owner() {
    let doc = bundled_who("examples/incidents/http-5xx.json", "json")
        .run()
        .json();
    assert_eq!(doc["owner"]["ref"], "group:default/shop");
    assert_eq!(doc["owner"]["rule"], "catalog");
    assert_eq!(doc["service"]["rule"], "label");
    assert_eq!(
        doc["why"][0],
        "label `service=\"checkout\"` names `component:default/checkout`"
    );
    assert_eq!(doc["impacted"][0]["ref"], "component:default/storefront");
    assert_eq!(doc["playbooks"][0]["playbook"], "http-5xx-rate-high");
}

#[test]
fn an_alert_group_whose_alerts_name_the_service_finds_it() {
    // The group's common labels name no service; each alert's `container` does.
    let doc = bundled_who("examples/incidents/pod-crashloop-group.json", "json")
        .run()
        .json();
    assert_eq!(doc["service"]["ref"], "component:default/checkout");
    assert_eq!(doc["owner"]["ref"], "group:default/shop");
}

const PLAYBOOK: &str = "version: 1\nname: any\ntitle: Any\nmatch:\n  labels: ['alertname=~\".+\"']\nsteps:\n  - id: look\n    shell: \"true\"\n";

fn entity(kind: &str, name: &str, extra: &str) -> String {
    format!(
        "---\napiVersion: backstage.io/v1alpha1\nkind: {kind}\nmetadata:\n  name: {name}\n{extra}"
    )
}

/// A playbook folder with `catalog-info.yaml` made of `docs`.
fn with_catalog(docs: &[String]) -> Test {
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .file("playbooks/catalog-info.yaml", docs.concat())
}

#[test]
fn no_catalog_means_no_owner_and_exit_1() {
    Test::new()
        .playbook("any.yaml", PLAYBOOK)
        .args(["who", "--label", "alertname=X", "--label", "service=orders"])
        .status(1)
        .stdout_contains("owner:    none found")
        .stdout_contains("no service catalog: pass `--catalog`, or add `catalog-info.yaml` to the playbook folder")
        .stdout_contains("playbooks: any")
        .run();
}

#[test]
fn service_labels_and_the_platform_team_are_configurable_on_the_location() {
    let location = "---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: here\n  annotations:\n    irctl.dev/service-labels: app\n    irctl.dev/platform-team: sre\n    irctl.dev/platform-types: cluster\nspec:\n  targets: []\n".to_string();
    let t = with_catalog(&[
        location,
        entity("Group", "sre", "spec:\n  type: team\n"),
        entity("Group", "web", "spec:\n  type: team\n"),
        entity(
            "Component",
            "shop",
            "spec:\n  type: service\n  owner: web\n",
        ),
        entity("Component", "k8s", "spec:\n  type: cluster\n  owner: web\n"),
    ]);
    // `service` is no longer a service label; `app` is.
    let doc = t
        .args([
            "who",
            "--format",
            "json",
            "--label",
            "alertname=X",
            "--label",
            "app=shop",
            "--label",
            "service=k8s",
        ])
        .run()
        .json();
    assert_eq!(doc["owner"]["ref"], "group:default/web");
    let doc = with_catalog(&[
        "---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: here\n  annotations:\n    irctl.dev/platform-team: sre\n    irctl.dev/platform-types: cluster\n".to_string(),
        entity("Group", "sre", "spec:\n  type: team\n"),
        entity("Component", "k8s", "spec:\n  type: cluster\n  owner: web\n"),
    ])
    .args(["who", "--format", "json", "--label", "alertname=X", "--label", "service=k8s"])
    .status(0)
    .run()
    .json();
    assert_eq!(doc["owner"]["ref"], "group:default/sre");
    assert_eq!(doc["owner"]["rule"], "platform");
    assert_eq!(
        doc["owner"]["why"],
        "`component:default/k8s` has `spec.type: cluster`, so the platform team `group:default/sre` owns it"
    );
}

#[test]
fn the_platform_annotation_and_a_selector_beat_the_label() {
    let doc = with_catalog(&[
        entity("Group", "platform", "spec:\n  type: team\n"),
        entity("Group", "web", "spec:\n  type: team\n"),
        entity("Component", "web", "spec:\n  type: service\n  owner: web\n"),
        entity(
            "Component",
            "ingress",
            "  annotations:\n    irctl.dev/platform: \"true\"\n    irctl.dev/alert-selector: '{alertname=\"IngressDown\", env=~\"prod|staging\"}'\nspec:\n  type: service\n  owner: web\n",
        ),
    ])
    .args(["who", "--format", "json", "--label", "alertname=IngressDown", "--label", "env=prod", "--label", "service=web"])
    .run()
    .json();
    assert_eq!(doc["service"]["ref"], "component:default/ingress");
    assert_eq!(doc["owner"]["ref"], "group:default/platform");
    assert_eq!(
        doc["owner"]["why"],
        "`component:default/ingress` is annotated `irctl.dev/platform: \"true\"`, so the platform team `group:default/platform` owns it"
    );
}

#[test]
fn impact_walks_both_directions_within_the_depth_and_survives_cycles() {
    let loc = "---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: here\n  annotations:\n    irctl.dev/impact-depth: \"2\"\n".to_string();
    let doc = with_catalog(&[
        loc,
        entity("Group", "t", "spec:\n  type: team\n"),
        // db <- api (dependsOn) ; db -> worker (dependencyOf) ; api <- web <- edge ; a loop api <-> web
        entity(
            "Resource",
            "db",
            "spec:\n  type: database\n  owner: t\n  dependencyOf: [component:worker]\n",
        ),
        entity(
            "Component",
            "api",
            "spec:\n  type: service\n  owner: t\n  dependsOn: [resource:db, component:web]\n",
        ),
        entity(
            "Component",
            "worker",
            "spec:\n  type: service\n  owner: t\n",
        ),
        entity(
            "Component",
            "web",
            "spec:\n  type: service\n  owner: t\n  dependsOn: [component:api]\n",
        ),
        entity(
            "Component",
            "edge",
            "spec:\n  type: service\n  owner: t\n  dependsOn: [component:web]\n",
        ),
    ])
    .args([
        "who",
        "--format",
        "json",
        "--label",
        "alertname=X",
        "--label",
        "service=db",
    ])
    .run()
    .json();
    let got: Vec<(String, u64)> = doc["impacted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().into(),
                i["depth"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![("api".into(), 1), ("worker".into(), 1), ("web".into(), 2)],
        "edge is 3 hops away; the api <-> web loop is walked once"
    );
}

#[test]
fn catalog_text_is_shown_not_obeyed() {
    // A title with terminal escapes and a label value with a newline: both
    // come from outside and must not drive the terminal or forge lines.
    let catalog = || {
        with_catalog(&[
            entity(
                "Group",
                "t",
                "  title: \"evil\\e[2J\\e]8;;http://x\\a\"\nspec:\n  type: team\n",
            ),
            entity("Component", "svc", "spec:\n  type: service\n  owner: t\n"),
        ])
    };
    let out = catalog()
        .args(["who", "--label", "alertname=X", "--label", "service=svc"])
        .run();
    assert!(out.stdout.contains("owner:    evil"), "{}", out.stdout);
    assert!(
        !out.stdout.contains('\u{1b}'),
        "raw escape in output:\n{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains('\u{7}'),
        "raw bell in output:\n{}",
        out.stdout
    );
    let out = catalog()
        .args([
            "who",
            "--label",
            "alertname=X",
            "--label",
            "service=nope\nowner:    forged",
        ])
        .status(1)
        .run();
    assert!(!out.stdout.contains("\nowner:    forged"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains(r#"label `service="nope\nowner:    forged"` names no catalog entity"#),
        "{}",
        out.stdout
    );
}
