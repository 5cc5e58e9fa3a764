//! Hostile alert labels against chat markup, through the real binary: a
//! receiver on 127.0.0.1 stands in for Slack and Teams, and what it gets
//! must hold no live mention or disguised link from a label, keep the
//! author's own markup, and never carry a secret a step echoed.

mod common;
#[path = "support/receiver.rs"]
mod receiver;

use common::{Test, unindent};
use receiver::Receiver;

const SECRET: &str = "s3cr3t-v4lue-9x";

fn playbook(steps: &str) -> String {
    format!(
        "version: 1\nname: t\ntitle: Test\nmatch:\n  labels: ['app=\"t\"']\ndrill:\n  incident: {{ title: d, labels: {{ app: t }} }}\n{}",
        unindent(steps)
    )
}

/// An incident whose labels try every kind of chat markup.
fn incident() -> String {
    serde_json::json!({
        "title": "hostile",
        "labels": {
            "app": "t",
            "ping": "<!channel> <@U123>",
            "link": "<http://evil|Open runbook>",
            "md": "[click](http://evil)",
            "entity": "&lt;",
        }
    })
    .to_string()
}

fn run(yaml: &str) -> Test {
    Test::new()
        .playbook("t.yaml", yaml)
        .file("incident.json", incident())
        .env("IRCTL_STATE_DIR", "state")
        .env("IRCTL_SECRET_API_TOKEN", SECRET)
        .args(["run", "--incident", "incident.json"])
}

fn body(r: &Receiver) -> serde_json::Value {
    let reqs = r.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    serde_json::from_str(&reqs[0].body).unwrap()
}

#[test]
fn labels_cannot_ping_or_disguise_links_in_slack_or_teams() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let teams = Receiver::start(vec![(202, vec![], "")]);
    let yaml = playbook(&format!(
        r#"
        steps:
          - id: slack
            notify:
              slack:
                webhook: "{s}"
                text: "<!here> {{{{ incident.labels.ping }}}} {{{{ incident.labels.link }}}} {{{{ incident.labels.md }}}} {{{{ incident.labels.entity }}}}"
                blocks:
                  - type: section
                    text: {{ type: mrkdwn, text: "{{{{ incident.labels.ping }}}}" }}
          - id: teams
            notify:
              teams:
                webhook: "{t}"
                title: "[Runbook](https://wiki.example/db) {{{{ incident.labels.md }}}}"
                text: "**down** {{{{ incident.labels.ping }}}} {{{{ incident.labels.link }}}}"
        "#,
        s = slack.url("/services/T/B/X"),
        t = teams.url("/workflows/1"),
    ));
    run(&yaml).run();

    let msg = body(&slack);
    assert_eq!(
        msg["text"],
        "<!here> &lt;!channel&gt; &lt;@U123&gt; &lt;http://evil|Open runbook&gt; \
         [click](http://evil) &amp;lt;"
    );
    assert_eq!(
        msg["blocks"][0]["text"]["text"],
        "&lt;!channel&gt; &lt;@U123&gt;"
    );
    let raw = &slack.requests()[0].body;
    for live in ["<!channel>", "<@U123>", "<http://evil"] {
        assert!(!raw.contains(live), "live `{live}` reached slack: {raw}");
    }

    let card = body(&teams);
    let blocks = &card["attachments"][0]["content"]["body"];
    assert_eq!(
        blocks[0]["text"],
        r"[Runbook](https://wiki.example/db) \[click\]\(http://evil\)"
    );
    assert_eq!(
        blocks[1]["text"],
        r"**down** \<\!channel\> \<@U123\> \<http://evil\|Open runbook\>"
    );
    let raw = &teams.requests()[0].body;
    for live in ["[click](", "<!channel>", "<@U123>"] {
        assert!(!raw.contains(live), "live `{live}` reached teams: {raw}");
    }
}

#[test]
fn a_secret_a_step_echoed_never_reaches_a_notification() {
    let slack = Receiver::start(vec![(200, vec![], "ok")]);
    let teams = Receiver::start(vec![(202, vec![], "")]);
    let pd = Receiver::start(vec![(
        202,
        vec![("content-type", "application/json")],
        r#"{"status":"success","message":"Event processed","dedup_key":"k1"}"#,
    )]);
    let hook = Receiver::start(vec![(204, vec![], "")]);
    let yaml = playbook(&format!(
        r#"
        secrets: [API_TOKEN]
        steps:
          - id: leak
            shell: echo "token=$IRCTL_SECRET_API_TOKEN"
          - id: slack
            needs: [leak]
            notify:
              slack:
                webhook: "{s}"
                text: "output: {{{{ steps.leak.stdout }}}}"
                blocks: [{{ type: section, text: {{ type: mrkdwn, text: "{{{{ steps.leak.stdout }}}}" }} }}]
          - id: teams
            needs: [leak]
            notify: {{ teams: {{ webhook: "{t}", title: "{{{{ steps.leak.stdout }}}}", text: "{{{{ steps.leak.stdout }}}}" }} }}
          - id: page
            needs: [leak]
            notify:
              pagerduty:
                routing_key: "{{{{ secrets.API_TOKEN }}}}"
                summary: "{{{{ steps.leak.stdout }}}}"
                custom_details: {{ out: "{{{{ steps.leak.stdout }}}}" }}
                endpoint: "{p}"
          - id: hook
            needs: [leak]
            notify: {{ webhook: {{ url: "{h}", json: {{ out: "{{{{ steps.leak.stdout }}}}" }}, hmac_secret: "k3y" }} }}
        "#,
        s = slack.url("/services/T/B/X"),
        t = teams.url("/workflows/1"),
        p = pd.url("/v2/enqueue"),
        h = hook.url("/irctl"),
    ));
    run(&yaml).run();
    for (name, r) in [
        ("slack", &slack),
        ("teams", &teams),
        ("pagerduty", &pd),
        ("webhook", &hook),
    ] {
        let reqs = r.requests();
        assert_eq!(reqs.len(), 1, "{name}: {reqs:?}");
        assert!(
            reqs[0].body.contains("token=***"),
            "{name}: {}",
            reqs[0].body
        );
        if name != "pagerduty" {
            assert!(!reqs[0].body.contains(SECRET), "{name}: {}", reqs[0].body);
        }
    }
    // The routing key is the sender's own credential at its documented
    // place: it is sent, and only there.
    let event = body(&pd);
    assert_eq!(event["routing_key"], SECRET);
    assert_eq!(event["payload"]["summary"], "token=***\n");
    assert_eq!(event["payload"]["custom_details"]["out"], "token=***\n");
    // The signature covers the redacted body that was sent.
    let req = &hook.requests()[0];
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
    mac.update(req.body.as_bytes());
    assert_eq!(
        req.headers["x-irctl-signature"],
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    );
}
