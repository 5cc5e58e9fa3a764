//! Unit tests of incident parsing, against the documented fixtures.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::json;

use super::*;
use crate::clock::Clock;

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("examples/incidents")
        .join(name)
}

fn fixture(name: &str) -> Incident {
    match read(&fixture_path(name), None) {
        Ok(incident) => incident,
        Err(e) => panic!("{name}: {e}"),
    }
}

fn time(t: Option<DateTime<Utc>>) -> String {
    t.map(format_time).unwrap_or_else(|| "none".into())
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn alertmanager_firing_fixture() {
    let i = fixture("alertmanager-firing.json");
    assert_eq!(i.source, "alertmanager");
    assert_eq!(i.id, r#"{}:{alertname="HighRequestLatency"}"#);
    assert_eq!(i.title, "High request latency (2 alerts)");
    assert_eq!(
        (i.severity, i.severity_raw.as_str()),
        (Severity::Critical, "page")
    );
    assert_eq!(i.status, Status::Firing);
    assert_eq!(
        i.labels,
        labels(&[
            ("alertname", "HighRequestLatency"),
            ("job", "myjob"),
            ("severity", "page")
        ])
    );
    assert_eq!(
        time(i.started_at),
        "2024-05-14T09:02:31.482Z",
        "earliest, offset applied"
    );
    assert_eq!(time(i.ended_at), "none");
    assert_eq!(i.fingerprint, None, "two alerts have no single fingerprint");
    assert_eq!(
        i.url.as_deref(),
        Some("http://alertmanager.example.com:9093")
    );
    assert_eq!(i.alerts.len(), 2);
    assert_eq!(i.alerts[1].fingerprint.as_deref(), Some("9a0f3c77d2e14b58"));
    assert!(
        i.alerts.iter().all(|a| a.ends_at.is_none()),
        "0001-01-01 means not ended"
    );
    assert!(
        i.alerts[0]
            .generator_url
            .as_deref()
            .is_some_and(|u| u.contains("&g0.tab=1"))
    );
    assert_eq!(i.raw["receiver"], "irctl");
}

#[test]
fn alertmanager_resolved_fixture() {
    let i = fixture("alertmanager-resolved.json");
    assert_eq!(
        i.id,
        r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#
    );
    assert_eq!(
        i.title,
        "BlackBox Probe Failure: https://server.example.org"
    );
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.status, Status::Resolved);
    assert_eq!(time(i.started_at), "2023-02-06T13:08:45.828Z");
    assert_eq!(time(i.ended_at), "2023-02-06T13:21:45.828Z");
    assert_eq!(i.fingerprint.as_deref(), Some("1a30ba71cca2921f"));
    assert_eq!(i.labels["instance"], "https://server.example.org");
}

#[test]
fn grafana_fixture() {
    let i = fixture("grafana-firing.json");
    assert_eq!(i.source, "grafana");
    assert_eq!(i.id, "{}:{}");
    assert_eq!(i.title, "[FIRING:2]  (blue)");
    assert_eq!(
        (i.severity, i.severity_raw.as_str()),
        (Severity::Warning, "")
    );
    assert_eq!(i.status, Status::Firing);
    assert_eq!(i.labels, labels(&[("team", "blue")]));
    assert!(i.annotations.is_empty());
    assert_eq!(time(i.started_at), "2021-10-12T07:51:03.157Z");
    assert_eq!(i.url.as_deref(), Some("https://play.grafana.org/"));
    let first = &i.alerts[0];
    assert_eq!(first.values, Some(json!({"B": 44.23943737541908, "C": 1})));
    assert_eq!(first.dashboard_url, None, "empty links are absent");
    assert!(
        first
            .silence_url
            .as_deref()
            .is_some_and(|u| u.contains("alertmanager=grafana"))
    );
}

#[test]
fn pagerduty_webhook_fixture() {
    let i = fixture("pagerduty-v3-triggered.json");
    assert_eq!(i.source, "pagerduty-webhook");
    assert_eq!(i.id, "PGR0VU2");
    assert_eq!(i.title, "A little bump in the road");
    assert_eq!(
        (i.severity, i.severity_raw.as_str()),
        (Severity::Critical, "P1")
    );
    assert_eq!(i.status, Status::Firing);
    assert_eq!(
        i.labels,
        labels(&[
            ("event_type", "incident.triggered"),
            ("priority", "P1"),
            ("service", "API Service"),
            ("urgency", "high"),
        ])
    );
    assert_eq!(time(i.started_at), "2020-04-09T15:16:27.000Z");
    assert_eq!(
        i.url.as_deref(),
        Some("https://acme.pagerduty.com/incidents/PGR0VU2")
    );
    assert_eq!(
        i.fingerprint.as_deref(),
        Some("d3640fbd41094207a1c11e58e46b1662")
    );
    assert_eq!(i.alerts.len(), 1);
}

#[test]
fn pagerduty_event_fixture() {
    let i = fixture("pagerduty-events-v2-trigger.json");
    let routing_key = "e93facc04764012d7bfb002500d5d1a6";
    assert_eq!(i.source, "pagerduty-event");
    assert_eq!(i.id, "host1.example.com/postgres/deploy");
    assert_eq!(i.title, "Example alert on host1.example.com");
    assert_eq!(
        (i.severity, i.severity_raw.as_str()),
        (Severity::Info, "info")
    );
    assert_eq!(i.status, Status::Firing);
    assert_eq!(
        time(i.started_at),
        "2015-07-17T08:42:58.315Z",
        "`+0000` offset"
    );
    assert_eq!(i.labels["component"], "postgres");
    assert_eq!(i.labels["group"], "prod-datapipe");
    assert_eq!(i.labels["class"], "deploy");
    assert_eq!(i.labels["ping time"], "1500ms");
    assert_eq!(i.labels["load avg"], "0.75");
    assert!(i.labels["source"].starts_with("monitoringtool:"));
    assert_eq!(i.url.as_deref(), Some("https://monitoring.example.com"));
    assert_eq!(i.annotations["client"], "Sample Monitoring Service");
    let visible = format!("{} {} {:?} {:?}", i.id, i.title, i.labels, i.annotations);
    assert!(
        !visible.contains(routing_key),
        "routing key leaked: {visible}"
    );
}

#[test]
fn cloudevents_fixture_unwraps_alertmanager() {
    let i = fixture("cloudevents-alertmanager.json");
    assert_eq!(i.source, "cloudevents");
    assert_eq!(
        i.id,
        r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#
    );
    assert_eq!(
        i.title,
        "BlackBox Probe Failure: https://server.example.org"
    );
    assert_eq!(i.severity, Severity::Critical);
    assert_eq!(i.status, Status::Firing);
    assert_eq!(i.labels["alertname"], "ProbeFailure");
    assert_eq!(
        i.labels["ce_type"],
        "io.prometheus.alertmanager.notification"
    );
    assert_eq!(i.labels["ce_subject"], "ProbeFailure");
    assert_eq!(time(i.started_at), "2023-02-06T13:08:45.828Z");
    assert_eq!(i.raw["specversion"], "1.0");
}

#[test]
fn irctl_fixture() {
    let i = fixture("irctl-simple.yaml");
    assert_eq!(i.source, "irctl");
    assert_eq!(i.id, "INC-2024-0042");
    assert_eq!(i.title, "Checkout p99 latency above SLO");
    assert_eq!(
        (i.severity, i.severity_raw.as_str()),
        (Severity::High, "high")
    );
    assert_eq!(i.status, Status::Firing);
    assert_eq!(
        i.labels,
        labels(&[
            ("env", "production"),
            ("namespace", "shop"),
            ("service", "checkout"),
            ("team", "payments")
        ])
    );
    assert_eq!(time(i.started_at), "2024-03-05T14:02:11.000Z");
    assert_eq!(
        i.url.as_deref(),
        Some("https://status.example.com/incidents/42")
    );
    assert_eq!(i.raw["labels"]["team"], "payments");
}

#[test]
fn playbook_fixtures_carry_exactly_the_expected_labels() {
    // (fixture, started_at, severity, exact labels)
    type Case = (
        &'static str,
        &'static str,
        Severity,
        &'static [(&'static str, &'static str)],
    );
    let cases: &[Case] = &[
        (
            "disk-filling.json",
            "2024-05-14T03:17:42.614Z",
            Severity::Warning,
            &[
                ("alertname", "NodeFilesystemAlmostOutOfSpace"),
                ("severity", "warning"),
                ("instance", "localhost:9100"),
                ("mountpoint", "/"),
                ("device", "/dev/sda1"),
                ("fstype", "ext4"),
                ("job", "node"),
            ],
        ),
        (
            "http-5xx.json",
            "2024-05-14T14:26:09.337Z",
            Severity::Critical,
            &[
                ("alertname", "HighHttp5xxRate"),
                ("severity", "critical"),
                ("service", "checkout"),
                ("namespace", "shop"),
                ("job", "checkout"),
            ],
        ),
        (
            "pod-crashloop.json",
            "2024-05-14T16:45:51.908Z",
            Severity::Warning,
            &[
                ("alertname", "KubePodCrashLooping"),
                ("severity", "warning"),
                ("namespace", "shop"),
                ("pod", "checkout-7d9f8b6c5-x2x9q"),
                ("container", "checkout"),
            ],
        ),
        (
            "cert-expiry.json",
            "2024-05-14T08:00:16.052Z",
            Severity::Warning,
            &[
                ("alertname", "TLSCertificateExpiringSoon"),
                ("severity", "warning"),
                ("instance", "https://shop.example.com"),
                ("job", "blackbox"),
            ],
        ),
        (
            "pg-connections.json",
            "2024-05-14T19:12:38.771Z",
            Severity::Critical,
            &[
                ("alertname", "PgConnectionsHigh"),
                ("severity", "critical"),
                ("instance", "db-1:5432"),
                ("service", "payments"),
            ],
        ),
        (
            "target-down.json",
            "2024-05-14T05:31:04.126Z",
            Severity::Warning,
            &[
                ("alertname", "TargetDown"),
                ("severity", "warning"),
                ("job", "node"),
                ("instance", "localhost:9100"),
            ],
        ),
    ];
    for (name, started, severity, expected) in cases {
        let i = fixture(name);
        assert_eq!(i.source, "alertmanager", "{name}");
        assert_eq!(i.labels, labels(expected), "{name}");
        assert_eq!(i.alerts.len(), 1, "{name}");
        assert_eq!(i.alerts[0].labels, i.labels, "{name}");
        assert_eq!(i.severity, *severity, "{name}");
        assert_eq!(i.status, Status::Firing, "{name}");
        assert_eq!(time(i.started_at), *started, "{name}");
        assert!(i.id.starts_with("{}:{alertname="), "{name}: {}", i.id);
        assert_eq!(&i.title, &i.annotations["summary"], "{name}");
        assert!(
            i.annotations["runbook_url"].starts_with("https://"),
            "{name}"
        );
        assert!(i.fingerprint.is_some(), "{name}");
        assert!(i.alerts[0].generator_url.is_some(), "{name}");
    }
}

#[test]
fn malformed_json_has_origin_line_and_column() {
    let err = parse(
        b"{\n  \"status\": \"firing\"\n  \"alerts\": []\n}",
        "alert.json",
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid JSON in `alert.json` at line 3 column 3: expected `,` or `}`"
    );
    let err = parse(b"{\"a\": ", "<stdin>", None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid JSON in `<stdin>` at line 1"),
        "{err}"
    );
}

#[test]
fn malformed_yaml_has_origin_and_position() {
    let err = parse(b"title: t\nlabels: {a: b\n", "inc.yaml", None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid YAML in `inc.yaml` at line"),
        "{err}"
    );
}

#[test]
fn unknown_format_lists_supported_ones() {
    let err = parse(br#"{"hello": "world"}"#, "x.json", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "could not recognise the incident format of `x.json`; tried:\n  \
         - alertmanager, grafana: no `alerts` field\n  \
         - pagerduty-webhook: no `event` object\n  \
         - pagerduty-event: no `event_action` field\n  \
         - cloudevents: no `specversion` field\n  \
         - irctl: no `title` or `labels` field"
    );
    let err = parse(b"[1, 2]", "x.json", None).unwrap_err();
    assert!(
        matches!(err, IncidentError::UnrecognisedFormat { .. }),
        "{err}"
    );
    let err = "nagios".parse::<IncidentFormat>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown incident format `nagios`; supported: alertmanager, grafana, pagerduty-webhook, pagerduty-event, cloudevents, irctl"
    );
}

#[test]
fn format_names_round_trip() {
    for format in IncidentFormat::ALL {
        assert_eq!(format.as_str().parse::<IncidentFormat>().unwrap(), *format);
        assert_eq!(format.to_string(), format.as_str());
    }
    assert_eq!(
        "PagerDuty-Event".parse::<IncidentFormat>().unwrap(),
        IncidentFormat::PagerdutyEvent
    );
}

#[test]
fn forced_format_mismatch_says_what_the_format_needs() {
    let bytes = std::fs::read(fixture_path("alertmanager-firing.json")).unwrap();
    let err = parse(&bytes, "am.json", Some(IncidentFormat::PagerdutyEvent)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`am.json` does not match incident format `pagerduty-event`: it needs an object with `event_action` (`trigger`, `acknowledge` or `resolve`) and `payload` (PagerDuty Events API v2)"
    );
    let err = parse(&bytes, "am.json", Some(IncidentFormat::Cloudevents)).unwrap_err();
    assert!(err.to_string().contains("`specversion: \"1.0\"`"), "{err}");
    let err = parse(b"[]", "a.json", Some(IncidentFormat::Alertmanager)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`a.json` does not match incident format `alertmanager`: it needs an object with an `alerts` array (Alertmanager webhook, `version: \"4\"`)"
    );
    // Forcing a compatible format works: Grafana reads Alertmanager's envelope.
    let i = parse(&bytes, "am.json", Some(IncidentFormat::Grafana)).unwrap();
    assert_eq!(i.source, "grafana");
}

#[test]
fn oversized_payloads_are_rejected() {
    let big = vec![b' '; MAX_INCIDENT_BYTES + 1];
    let err = parse(&big, "big.json", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "incident `big.json` is larger than the 10 MiB limit (10485760 bytes)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.json");
    std::fs::write(&path, &big).unwrap();
    assert!(matches!(
        read(&path, None),
        Err(IncidentError::TooLarge { .. })
    ));
}

#[test]
fn non_utf8_and_empty_are_rejected_naming_the_origin() {
    let err = parse(b"{\"title\": \"caf\xe9\"}", "latin1.json", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "incident `latin1.json` is not valid UTF-8 (first invalid byte at offset 14)"
    );
    let err = parse(b" \n\t", "blank.json", None).unwrap_err();
    assert_eq!(err.to_string(), "incident `blank.json` is empty");
}

#[test]
fn missing_file_names_the_path() {
    let err = read(Path::new("/nonexistent/alert.json"), None).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot read incident `/nonexistent/alert.json`: "),
        "{err}"
    );
}

#[test]
fn bom_is_ignored() {
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend_from_slice(br#"{"title": "with bom", "labels": {"a": "b"}}"#);
    assert_eq!(parse(&bytes, "bom.json", None).unwrap().title, "with bom");
    let mut bytes = "\u{feff}".as_bytes().to_vec();
    bytes.extend_from_slice(b"title: yaml bom\n");
    assert_eq!(parse(&bytes, "<stdin>", None).unwrap().title, "yaml bom");
}

#[test]
fn hostile_label_values_are_kept_verbatim() {
    let hostile = [
        "$(touch /tmp/x)",
        "`rm -rf /`",
        "line1\nline2\r\n",
        "{{ 7*7 }}",
        "{% raw %}x",
        "'; DROP TABLE x; --",
        "\u{202e}evil\u{0000}",
    ];
    let alert_labels: serde_json::Map<String, Value> = hostile
        .iter()
        .enumerate()
        .map(|(n, v)| (format!("l{n}"), Value::String(v.to_string())))
        .collect();
    let payload = json!({"status": "firing", "commonLabels": alert_labels.clone(),
                         "commonAnnotations": {"summary": "{{ 7*7 }} $(id)"},
                         "alerts": [{"labels": alert_labels}]});
    let i = parse(payload.to_string().as_bytes(), "evil.json", None).unwrap();
    for (n, v) in hostile.iter().enumerate() {
        assert_eq!(i.labels[&format!("l{n}")], *v);
        assert_eq!(i.alerts[0].labels[&format!("l{n}")], *v);
        assert_eq!(i.to_template_value()["labels"][format!("l{n}")], *v);
    }
    assert_eq!(i.title, "{{ 7*7 }} $(id)");

    let flags = vec![("cmd".to_string(), "$(touch /tmp/x)".to_string())];
    let i = from_flags(&flags, Some("`id`\n{{ 7*7 }}"), None, Clock::System);
    assert_eq!(i.labels["cmd"], "$(touch /tmp/x)");
    assert_eq!(i.title, "`id`\n{{ 7*7 }}");
}

#[test]
fn untrusted_values_in_errors_are_escaped() {
    let err = parse(
        br#"{"status": "x\n\u001b[31mred", "alerts": [{}]}"#,
        "e.json",
        None,
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(!msg.contains('\n') && !msg.contains('\u{1b}'), "{msg:?}");
}

#[test]
fn severity_normalisation() {
    use Severity::*;
    for (raw, want) in [
        ("critical", Critical),
        ("CRIT", Critical),
        ("fatal", Critical),
        ("emergency", Critical),
        ("alert", Critical),
        ("P1", Critical),
        ("sev1", Critical),
        ("SEV-1", Critical),
        ("page", Critical),
        ("disaster", Critical),
        ("error", High),
        ("err", High),
        ("high", High),
        ("major", High),
        ("p2", High),
        ("Sev 2", High),
        ("warning", Warning),
        ("warn", Warning),
        ("medium", Warning),
        ("minor", Warning),
        ("average", Warning),
        ("p3", Warning),
        ("sev3", Warning),
        ("info", Info),
        ("informational", Info),
        ("low", Info),
        ("notice", Info),
        ("debug", Info),
        ("none", Info),
        ("ok", Info),
        ("p4", Info),
        ("P5", Info),
        ("not classified", Info),
        ("", Warning),
        ("bananas", Warning),
        ("0", Warning),
    ] {
        assert_eq!(Severity::normalise(raw), want, "{raw:?}");
    }
    assert!(Critical < High && High < Warning && Warning < Info);
    assert_eq!(Critical.to_string(), "critical");
    assert_eq!(serde_json::to_value(High).unwrap(), "high");
}

#[test]
fn file_safe_id() {
    let mut i = from_flags(&[], Some("t"), None, Clock::System);
    let safe = |i: &Incident| i.file_safe_id();

    i.id = "INC-2024.0042_a".into();
    assert_eq!(safe(&i), "INC-2024.0042_a", "safe ids are unchanged");

    i.id = r#"{}/{severity="critical"}:{alertname="ProbeFailure"}"#.into();
    let s = safe(&i);
    assert!(
        s.starts_with("severity_critical_alertname_ProbeFailure-"),
        "{s}"
    );
    assert_eq!(
        s.len(),
        "severity_critical_alertname_ProbeFailure-".len() + 12
    );

    let mut other = i.clone();
    other.id = r#"{}/{severity="critical"}:{alertname=ProbeFailure}"#.into();
    assert_ne!(safe(&other), s, "distinct ids stay distinct");

    for id in ["../../etc/passwd", "..", ".", "", "ü", "a/b", "-rf"] {
        i.id = id.into();
        let s = safe(&i);
        assert!(s.len() <= 80 && !s.is_empty(), "{id:?} -> {s:?}");
        assert!(
            s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "{s}"
        );
        assert!(
            !s.starts_with(['.', '-']) && s != ".." && !s.contains('/'),
            "{id:?} -> {s:?}"
        );
    }
    i.id = "x".repeat(300);
    let s = safe(&i);
    assert_eq!(s.len(), 80);
}

#[test]
fn match_labels_never_override_labels() {
    let mut i = from_flags(
        &[("alertname".into(), "A".into())],
        None,
        Some("p1"),
        Clock::System,
    );
    let m = i.match_labels();
    assert_eq!(m["severity"], "critical");
    assert_eq!(m["status"], "firing");
    assert_eq!(m["source"], "adhoc");
    i.labels.insert("severity".into(), "P1".into());
    i.labels.insert("source".into(), "db-1".into());
    let m = i.match_labels();
    assert_eq!(m["severity"], "P1");
    assert_eq!(m["source"], "db-1");
}

#[test]
fn from_flags_defaults() {
    let flags = vec![
        ("alertname".to_string(), "Disk".to_string()),
        ("severity".to_string(), "crit".to_string()),
    ];
    let at = Utc::now() - chrono::Duration::days(3);
    let i = from_flags(&flags, None, None, Clock::Fixed(at));
    assert_eq!(i.title, "Disk");
    assert_eq!(
        (i.severity, i.severity_raw.as_str()),
        (Severity::Critical, "crit")
    );
    assert_eq!(i.status, Status::Firing);
    assert_eq!(i.source, "adhoc");
    assert!(i.id.starts_with("adhoc-"));
    assert_eq!(i.started_at, Some(at), "started by the clock it is given");
    assert_eq!(i.alerts.len(), 1);
    let j = from_flags(&flags, None, Some("info"), Clock::System);
    assert_eq!(j.severity, Severity::Info);
    assert_eq!(i.id, j.id, "id hashes title and labels only");
    let k = from_flags(&[], None, None, Clock::System);
    assert_eq!(
        (k.title.as_str(), k.severity),
        ("ad hoc incident", Severity::Warning)
    );
}

#[test]
fn label_flags() {
    assert_eq!(parse_label_flag("a=b"), Ok(("a".into(), "b".into())));
    assert_eq!(
        parse_label_flag("_x9=a=b=c"),
        Ok(("_x9".into(), "a=b=c".into()))
    );
    assert_eq!(
        parse_label_flag("empty="),
        Ok(("empty".into(), String::new()))
    );
    assert_eq!(
        parse_label_flag("novalue"),
        Err("expected `key=value`, found `novalue`".into())
    );
    assert_eq!(
        parse_label_flag("9a=b"),
        Err("invalid label name `9a`: it must match `[a-zA-Z_][a-zA-Z0-9_]*`".into())
    );
    assert!(parse_label_flag("=b").is_err());
    assert!(parse_label_flag("a-b=c").is_err());
    assert!(parse_label_flag("ä=c").is_err());
}

#[test]
fn template_value_has_every_field() {
    let i = fixture("alertmanager-resolved.json");
    let v = i.to_template_value();
    // The same list `validate` allows as `incident.*`, so the two cannot drift.
    for key in super::TEMPLATE_FIELDS {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["started_at"], "2023-02-06T13:08:45.828Z");
    assert_eq!(v["severity"], "critical");
    assert_eq!(v["status"], "resolved");
    assert_eq!(v["alerts"][0]["ends_at"], "2023-02-06T13:21:45.828Z");
    assert_eq!(v["alerts"][0]["values"], Value::Null);
    assert_eq!(v["raw"]["version"], "4");
    // With one alert, `alert` is that alert (the one in hand).
    assert_eq!(v["alert"], v["alerts"][0]);
    // Without a catalog nobody owns it and nothing is impacted.
    assert_eq!(v["owner"], Value::Null);
    assert_eq!(v["impacted"], Value::Array(Vec::new()));
    // Serialize agrees with the template view on everything but `raw`
    // order, the derived `alert`, and the catalog's `owner` and `impacted`
    // (added by whoever resolved them, not part of the payload).
    let mut without_alert = v.clone();
    let m = without_alert.as_object_mut().unwrap();
    for derived in ["alert", "owner", "impacted"] {
        m.remove(derived);
    }
    assert_eq!(serde_json::to_value(&i).unwrap(), without_alert);
}

#[test]
fn detection_is_unambiguous_for_every_fixture() {
    for (name, format) in [
        ("alertmanager-firing.json", IncidentFormat::Alertmanager),
        ("grafana-firing.json", IncidentFormat::Grafana),
        (
            "pagerduty-v3-triggered.json",
            IncidentFormat::PagerdutyWebhook,
        ),
        (
            "pagerduty-events-v2-trigger.json",
            IncidentFormat::PagerdutyEvent,
        ),
        ("cloudevents-alertmanager.json", IncidentFormat::Cloudevents),
    ] {
        let value: Value =
            serde_json::from_slice(&std::fs::read(fixture_path(name)).unwrap()).unwrap();
        let obj = value.as_object().unwrap();
        assert_eq!(detect(obj), Some(format), "{name}");
        for other in IncidentFormat::ALL.iter().filter(|f| **f != format) {
            // Every other format either refuses the shape or fails to parse it.
            if fits(*other, obj) {
                let forced = from_document(
                    value.clone(),
                    name,
                    Some(Forced::Builtin(*other)),
                    None,
                    &[],
                );
                let compatible = matches!(
                    (format, other),
                    (IncidentFormat::Alertmanager, IncidentFormat::Grafana)
                        | (IncidentFormat::Grafana, IncidentFormat::Alertmanager)
                );
                assert!(
                    compatible || forced.is_err(),
                    "{name} also reads as {other}"
                );
            }
        }
    }
}

#[test]
fn no_panics_on_odd_input() {
    let inputs: &[&[u8]] = &[
        b"null",
        b"0",
        b"\"str\"",
        b"true",
        b"{}",
        b"[]",
        b"{\"alerts\": null}",
        b"{\"alerts\": [null, 1, \"x\"]}",
        b"{\"event\": {}}",
        b"{\"event_action\": 1}",
        b"{\"specversion\": 1}",
        b"{\"specversion\": \"1.0\", \"id\": \"\", \"source\": \"s\", \"type\": \"t\"}",
        b"{\"title\": null}",
        b"{\"labels\": null}",
        b"{\"title\": \"\"}",
        b"{\"alerts\": [{\"startsAt\": 5}]}",
        b"{\"alerts\": [{\"startsAt\": \"9999-99-99T99:99:99Z\"}]}",
        b"{\"truncatedAlerts\": -1, \"alerts\": [{}]}",
        b"---\n- a\n",
        b"title: [unclosed",
        b"\xef\xbb\xbf",
        b"{\"a\":1e999}",
        b"{\"event\": {\"event_type\": \"incident.triggered\", \"data\": {\"type\": \"x\"}}}",
        b"{\"alerts\": [{\"startsAt\": \"2024-01-01T10:00:00.\xc3\xa9Z\"}]}",
    ];
    for input in inputs {
        let _ = parse(input, "odd.json", None);
        let _ = parse(input, "odd.yaml", None);
        for format in IncidentFormat::ALL {
            let _ = parse(input, "odd", Some(*format));
        }
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(parse(deep.as_bytes(), "deep.json", None).is_err());
    let deep_yaml = format!(
        "title: t\nlabels: {}{}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    assert!(parse(deep_yaml.as_bytes(), "deep.yaml", None).is_err());
}
