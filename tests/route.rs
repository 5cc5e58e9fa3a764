//! Routing through the binary: a `kind: routing` playbook runs beside the
//! remediation playbook (two runs, two timelines), `notify: { team: owner }`
//! reaches the owning team and `notify: { team: impacted }` each impacted
//! team once per episode, on every channel kind, with catalog and label
//! values escaped for the chat markup; a channel whose secret is not set
//! is skipped and recorded, never a failed run. A local receiver stands in
//! for Slack, Teams, PagerDuty and a webhook.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use std::path::Path;

use common::Test;
use receiver::{Received, Receiver};

const HEAD: &str = "apiVersion: backstage.io/v1alpha1\n";

/// The database (a Resource, so the platform team owns its alerts) and
/// what depends on it: two services of `shop` (told once), one of
/// `payments` (its only channel's secret is not set), one of `ghost` (no
/// teams.yaml entry), and one of the platform team itself (not told: it owns).
fn catalog() -> String {
    let group = |name: &str, title: &str| {
        format!(
            "{HEAD}kind: Group\nmetadata:\n  name: {name}\nspec:\n  type: team\n  profile:\n    displayName: {title:?}\n"
        )
    };
    let component = |name: &str, owner: &str| {
        format!(
            "{HEAD}kind: Component\nmetadata:\n  name: {name}\nspec:\n  type: service\n  owner: {owner}\n  dependsOn: [resource:db]\n"
        )
    };
    [
        group("platform", "Platform <!here> *ops* & co"),
        group("shop", "Shop"),
        group("payments", "Payments"),
        group("ghost", "Ghost"),
        format!("{HEAD}kind: Resource\nmetadata:\n  name: db\n  title: \"Main DB <@U123>\"\nspec:\n  type: database\n  owner: platform\n"),
        component("orders", "shop"),
        component("checkout", "shop"),
        component("billing", "payments"),
        component("ledger", "ghost"),
        component("metrics", "platform"),
    ]
    .join("---\n")
}

fn teams(receiver: &Receiver) -> String {
    format!(
        "version: 1
secrets: [SLACK_PLATFORM, PD_PLATFORM, HOOK_SHOP, TEAMS_SHOP, SLACK_PAYMENTS]
teams:
  platform:
    channels:
      - slack: SLACK_PLATFORM
      - pagerduty: PD_PLATFORM
        endpoint: {}
  shop:
    title: Shop team
    channels:
      - webhook: HOOK_SHOP
      - teams: TEAMS_SHOP
  payments:
    channels:
      - slack: SLACK_PAYMENTS
",
        receiver.url("/pd-platform")
    )
}

const ROUTE: &str = "version: 1
name: route
title: Tell the owner
kind: routing
auto: true
match: { labels: ['alertname!=\"\"'] }
steps:
  - id: tell_owner
    notify:
      team: owner
      text: \"{{ team.title }} owns {{ incident.labels.alertname }} on {{ incident.owner.service.title }} ({{ incident.labels.instance }}); run {{ run.id }}\"
";

const FIX: &str = "version: 1
name: fix-db
title: Fix the database
owner: group:default/platform
match: { labels: ['alertname=\"DbDown\"'] }
steps:
  - id: look
    shell: echo looking
  - id: tell_impacted
    notify:
      team: impacted
      title: \"Impact: {{ incident.title }}\"
      text: \"{{ team.title }}: {{ team.services | join(', ') }} affected by {{ incident.labels.alertname }} on {{ incident.owner.service.title }}, owned by {{ incident.owner.title }}; playbook {{ playbook.name }} run {{ run.id }}\"
";

/// The secrets the test sets: every channel's but `SLACK_PAYMENTS`.
fn secrets(receiver: &Receiver) -> String {
    format!(
        "SLACK_PLATFORM={}\nPD_PLATFORM=pd-platform-key-0123456789\nHOOK_SHOP={}\nTEAMS_SHOP={}\n",
        receiver.url("/slack-platform"),
        receiver.url("/hook-shop"),
        receiver.url("/teams-shop"),
    )
}

const INCIDENT: &str = r#"{"title":"db down","labels":{"alertname":"DbDown","service":"db","instance":"<!channel> [x](http://evil)"}}"#;

fn setup(receiver: &Receiver) -> Test {
    Test::new()
        .file("playbooks/catalog-info.yaml", catalog())
        .file("playbooks/teams.yaml", teams(receiver))
        .playbook("route.yaml", ROUTE)
        .playbook("fix.yaml", FIX)
        .file("secrets.env", secrets(receiver))
        .file("incident.json", INCIDENT)
}

/// `irctl run` of the incident, in a test's temp dir.
const RUN: [&str; 7] = [
    "run",
    "--state-dir",
    "state",
    "--secrets-file",
    "secrets.env",
    "--incident",
    "incident.json",
];

/// `irctl run` in `dir` (a finished test's temp dir) again.
fn run_again(dir: &Path, extra: &[&str]) -> common::Output {
    let p = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
    let mut args = vec![
        "run".to_string(),
        "--playbooks".into(),
        p("playbooks"),
        "--state-dir".into(),
        p("state"),
        "--secrets-file".into(),
        p("secrets.env"),
        "--incident".into(),
        p("incident.json"),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Test::new().args(args).run()
}

fn at(requests: &[Received], prefix: &str) -> Vec<serde_json::Value> {
    requests
        .iter()
        .filter(|r| r.path.starts_with(prefix))
        .map(|r| serde_json::from_str(&r.body).unwrap())
        .collect()
}

fn runs(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("state/runs")).unwrap().count()
}

#[test]
fn owner_and_impacted_teams_are_told_once_each_on_every_channel() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let out = setup(&receiver).args(RUN).run();
    let dir = out.tempdir.path();
    // Routing and remediation: two runs, two timelines, routing first.
    assert_eq!(runs(dir), 2, "{}", out.stderr);
    let route_at = out.stderr.find("playbook route").unwrap();
    let fix_at = out.stderr.find("playbook fix-db").unwrap();
    assert!(route_at < fix_at, "{}", out.stderr);

    let requests = receiver.requests();
    // The owner: Slack and PagerDuty, values escaped for Slack.
    let slack = at(&requests, "/slack-platform");
    assert_eq!(slack.len(), 1, "{requests:#?}");
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("Platform &lt;!here&gt; *ops* &amp; co owns DbDown on Main DB &lt;@U123&gt; (&lt;!channel&gt; [x](http://evil)); run "),
        "{text}"
    );
    assert!(!text.contains("<!"), "{text}");
    let pd = at(&requests, "/pd-platform");
    assert_eq!(pd.len(), 1, "{requests:#?}");
    assert_eq!(pd[0]["routing_key"], "pd-platform-key-0123456789");
    // Shop owns two impacted services and is told once, on both channels.
    let hook = at(&requests, "/hook-shop");
    assert_eq!(hook.len(), 1, "{requests:#?}");
    assert_eq!(hook[0]["team"], "group:default/shop");
    let hook_text = hook[0]["text"].as_str().unwrap();
    assert!(
        hook_text.starts_with("Shop team: component:default/checkout, component:default/orders affected by DbDown on Main DB <@U123>, owned by Platform <!here> *ops* & co; playbook fix-db run "),
        "{hook_text}"
    );
    let teams = at(&requests, "/teams-shop");
    assert_eq!(teams.len(), 1, "{requests:#?}");
    let card = teams[0].to_string();
    assert!(card.contains(r"Main DB \\<@U123\\>"), "{card}");
    // Nothing else: not the owner as an impacted team, not payments (no
    // secret), not ghost (no teams.yaml entry).
    assert_eq!(requests.len(), 4, "{requests:#?}");
    assert!(
        out.stderr.contains(
            "team `group:default/payments` slack: secret SLACK_PAYMENTS not set, skipped"
        ),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("team `group:default/ghost` is not in teams.yaml, so not notifiable"),
        "{}",
        out.stderr
    );

    // The incident log records one notice per impacted team.
    let id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("incident: "))
        .and_then(|l| l.split(" (short id").next())
        .unwrap()
        .to_string();
    let postmortem = Test::new()
        .args([
            "postmortem",
            "--state-dir",
            &dir.join("state").to_string_lossy(),
            "--incident",
            &id,
        ])
        .run();
    let md = &postmortem.stdout;
    assert!(
        md.contains(
            "| group:default/shop | component:default/checkout, component:default/orders | "
        ),
        "{md}"
    );
    assert!(md.contains("| webhook, teams | fix-db |"), "{md}");
    assert!(
        md.contains("not sent (skipped: slack: secret SLACK_PAYMENTS not set)"),
        "{md}"
    );
    assert!(
        md.contains("not sent (skipped: not in teams.yaml, so not notifiable)"),
        "{md}"
    );

    // A repeat delivery runs nothing and tells nobody.
    let repeat = run_again(dir, &[]);
    assert!(repeat.stderr.contains("already ran"), "{}", repeat.stderr);
    assert_eq!(receiver.requests().len(), 4);
    assert_eq!(runs(dir), 2);

    // `--again` runs both again: the owner is told again, the impacted
    // teams already told in this episode are not.
    let again = run_again(dir, &["--again"]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert_eq!(runs(dir), 4);
    let requests = receiver.requests();
    assert_eq!(at(&requests, "/slack-platform").len(), 2);
    assert_eq!(at(&requests, "/hook-shop").len(), 1, "{requests:#?}");
    assert_eq!(at(&requests, "/teams-shop").len(), 1, "{requests:#?}");
}

#[test]
fn a_missing_channel_secret_is_skipped_not_a_failed_run() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let out = setup(&receiver).file("secrets.env", "").args(RUN).run();
    assert!(receiver.requests().is_empty());
    assert!(
        out.stderr.contains(
            "team `group:default/platform` slack: secret SLACK_PLATFORM not set, skipped"
        ),
        "{}",
        out.stderr
    );
    // Recorded with the run, for the timeline and the postmortem.
    let timelines: String = std::fs::read_dir(out.tempdir.path().join("state/runs"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("timeline.jsonl")).unwrap())
        .collect();
    assert!(
        timelines.contains("team `group:default/shop` webhook: secret HOOK_SHOP not set, skipped"),
        "{timelines}"
    );
}

#[test]
fn match_and_who_list_the_routing_playbooks_and_how_the_owner_is_reached() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let out = setup(&receiver)
        .args(["match", "--incident", "incident.json", "--format", "json"])
        .run();
    let doc = out.json();
    assert_eq!(doc["selected"], "fix-db");
    assert_eq!(doc["routing"][0]["playbook"], "route");
    let out = setup(&receiver)
        .args(["who", "--incident", "incident.json", "--format", "json"])
        .run();
    let doc = out.json();
    assert_eq!(doc["owner"]["ref"], "group:default/platform");
    assert_eq!(
        doc["owner"]["channels"],
        serde_json::json!(["slack:SLACK_PLATFORM", "pagerduty:PD_PLATFORM"])
    );
    assert_eq!(doc["playbooks"][0]["playbook"], "fix-db");
    assert_eq!(doc["routing"][0]["playbook"], "route");
    // A routing playbook is no party to a tie among remediation playbooks.
    let second = FIX.replace("name: fix-db", "name: fix-db-too");
    setup(&receiver)
        .playbook("fix-too.yaml", &second)
        .args(["run", "--state-dir", "state", "--incident", "incident.json"])
        .status(1)
        .stderr_contains("2 playbooks tie for incident")
        .stderr_contains("fix-db, fix-db-too")
        .run();
}

#[test]
fn validate_wants_a_catalog_for_owner_and_impacted_and_known_owner_groups() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    Test::new()
        .file("playbooks/teams.yaml", teams(&receiver))
        .playbook("route.yaml", ROUTE)
        .args(["validate"])
        .status(1)
        .stderr_contains("needs-catalog")
        .stderr_contains("`team: owner` needs the service catalog")
        .run();
    setup(&receiver)
        .playbook(
            "fix.yaml",
            &FIX.replace("group:default/platform", "team-sre"),
        )
        .args(["validate", "--format", "json"])
        .stdout_contains("\"unknown-owner\"")
        .stdout_contains("has `owner: team-sre`, which is no Group of the catalog")
        .run();
}

#[test]
fn the_bundled_teams_file_is_the_example_one() {
    let root = env!("CARGO_MANIFEST_DIR");
    let read = |p: &str| std::fs::read_to_string(format!("{root}/{p}")).unwrap();
    assert_eq!(
        read("playbooks/teams.yaml"),
        read("examples/catalog/teams.yaml")
    );
}

#[test]
fn a_notice_that_failed_is_sent_when_the_run_is_resumed_and_recorded_once() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    // Nothing listens on this port: the shop team's channels refuse.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/dead", l.local_addr().unwrap())
    };
    let secrets = |shop: &str| {
        format!(
            "SLACK_PLATFORM={}\nPD_PLATFORM=pd-platform-key-0123456789\nHOOK_SHOP={shop}\nTEAMS_SHOP={shop}\n",
            receiver.url("/slack-platform"),
        )
    };
    let out = setup(&receiver)
        .file("secrets.env", secrets(&dead))
        .status(1)
        .args(RUN)
        .run();
    let dir = out.tempdir.path();
    let fix_run = out
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("run "))
        .filter(|id| !id.contains(' '))
        .nth(1)
        .unwrap()
        .to_string();
    assert!(at(&receiver.requests(), "/hook-shop").is_empty());

    // The channels are back: resuming the remediation run tells shop now.
    std::fs::write(
        dir.join("secrets.env"),
        secrets(&receiver.url("/hook-shop")),
    )
    .unwrap();
    let p = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
    let resumed = Test::new()
        .args([
            "resume",
            &fix_run,
            "--playbooks",
            &p("playbooks"),
            "--state-dir",
            &p("state"),
            "--secrets-file",
            &p("secrets.env"),
        ])
        .run();
    assert_eq!(resumed.status, 0, "{}", resumed.stderr);
    let requests = receiver.requests();
    let hook = at(&requests, "/hook-shop");
    assert_eq!(hook.len(), 2, "webhook and Teams card: {requests:#?}");
    assert!(
        hook.iter().any(|b| b["team"] == "group:default/shop"),
        "{requests:#?}"
    );

    // Recorded: a later `--again` does not tell shop a second time.
    let again = run_again(dir, &["--again"]);
    assert_eq!(again.status, 0, "{}", again.stderr);
    assert_eq!(at(&receiver.requests(), "/hook-shop").len(), 2);
}

/// `fix-db` with a drill whose synthetic incident is the database alert,
/// and a step telling the owner.
const DRILLED: &str = "version: 1
name: fix-db
title: Fix the database
owner: group:default/platform
match: { labels: ['alertname=\"DbDown\"'] }
drill:
  incident: { title: db down drill, labels: { alertname: DbDown, service: db } }
steps:
  - id: tell_owner
    notify: { team: owner, text: \"{{ team.title }}: drill of {{ incident.owner.service.title }}\" }
  - id: tell_impacted
    notify: { team: impacted, text: \"{{ team.title }}: {{ team.services | join(', ') }}\" }
";

#[test]
fn a_drill_tells_the_teams_a_real_alert_would_tagged_drill_and_records_no_notice() {
    let receiver = Receiver::start(vec![(200, vec![], "ok")]);
    let drill = [
        "drill",
        "fix-db",
        "--state-dir",
        "state",
        "--secrets-file",
        "secrets.env",
    ];
    let out = Test::new()
        .file("playbooks/catalog-info.yaml", catalog())
        .file("playbooks/teams.yaml", teams(&receiver))
        .playbook("fix.yaml", DRILLED)
        .file("secrets.env", secrets(&receiver))
        .args(drill)
        .run();
    assert_eq!(out.status, 0, "{}\n{}", out.stdout, out.stderr);
    let requests = receiver.requests();
    // The owner (the platform team owns the database), tagged as a drill.
    let slack = at(&requests, "/slack-platform");
    assert_eq!(slack.len(), 1, "{requests:#?}");
    assert_eq!(
        slack[0]["text"],
        "[DRILL] Platform &lt;!here&gt; *ops* &amp; co: drill of Main DB &lt;@U123&gt;"
    );
    assert_eq!(at(&requests, "/pd-platform").len(), 1, "{requests:#?}");
    // The impacted team, on both its channels.
    let hook = at(&requests, "/hook-shop");
    assert_eq!(hook.len(), 1, "{requests:#?}");
    assert_eq!(
        hook[0]["text"],
        "[DRILL] Shop team: component:default/checkout, component:default/orders"
    );
    assert_eq!(hook[0]["drill"], true);
    assert_eq!(at(&requests, "/teams-shop").len(), 1, "{requests:#?}");
    assert_eq!(requests.len(), 4, "{requests:#?}");

    // A drill records no impact notice: the next drill tells the teams again.
    let dir = out.tempdir.path();
    let p = |rel: &str| dir.join(rel).to_string_lossy().into_owned();
    let second = Test::new()
        .args([
            "drill",
            "fix-db",
            "--playbooks",
            &p("playbooks"),
            "--state-dir",
            &p("state"),
            "--secrets-file",
            &p("secrets.env"),
        ])
        .run();
    assert_eq!(second.status, 0, "{}", second.stderr);
    let requests = receiver.requests();
    assert_eq!(at(&requests, "/hook-shop").len(), 2, "{requests:#?}");
    assert_eq!(at(&requests, "/slack-platform").len(), 2, "{requests:#?}");
}
