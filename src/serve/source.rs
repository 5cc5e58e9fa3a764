//! The senders serve accepts, what their deliveries parse to, and the key
//! that recognises a delivery sent twice.
//!
//! Alertmanager re-sends a group on every `repeat_interval`, and an HA pair
//! sends it once per replica; PagerDuty retries a delivery it thinks failed.
//! Such copies must not become work twice, so each delivery gets a
//! deduplication key: PagerDuty's `X-Webhook-Id`, a CloudEvent's `source`
//! and `id`, and for Alertmanager and Grafana a hash of the group key and
//! each alert's fingerprint, status and start time — which changes exactly
//! when the group's state does.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::incident::{self, Incident, IncidentError, IncidentFormat};

/// A sender, and the endpoint it posts to (`/hooks/<name>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Prometheus Alertmanager's webhook receiver.
    Alertmanager,
    /// Grafana's webhook contact point.
    Grafana,
    /// PagerDuty V3 webhooks.
    Pagerduty,
    /// CloudEvents 1.0 (JSON event format).
    Cloudevents,
}

impl Source {
    /// Every source.
    pub const ALL: &[Source] = &[
        Source::Alertmanager,
        Source::Grafana,
        Source::Pagerduty,
        Source::Cloudevents,
    ];

    /// The endpoint's name, in paths, metrics and the store.
    pub const fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Grafana => "grafana",
            Source::Pagerduty => "pagerduty",
            Source::Cloudevents => "cloudevents",
        }
    }

    /// The source named `name`.
    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.iter().copied().find(|s| s.as_str() == name)
    }

    /// The payload format its deliveries are read as (and `irctl run` is told).
    pub const fn format(self) -> IncidentFormat {
        match self {
            Source::Alertmanager => IncidentFormat::Alertmanager,
            Source::Grafana => IncidentFormat::Grafana,
            Source::Pagerduty => IncidentFormat::PagerdutyWebhook,
            Source::Cloudevents => IncidentFormat::Cloudevents,
        }
    }
}

/// A delivery that parsed: its incident and deduplication key.
#[derive(Debug)]
pub struct Parsed {
    /// The incident, as `irctl run` will read it.
    pub incident: Incident,
    /// Equal for two copies of one delivery.
    pub dedup_key: String,
}

/// Why a delivery is not queued.
#[derive(Debug)]
pub enum Rejected {
    /// Not a payload of this source (400, with the parser's message).
    Malformed(IncidentError),
    /// Well-formed, but of a kind irctl does not respond to (202, not queued).
    Ignored(String),
}

/// Parses `body`, posted to `source`'s endpoint with `headers`.
pub fn parse(source: Source, headers: &HeaderMap, body: &[u8]) -> Result<Parsed, Rejected> {
    let origin = format!("/hooks/{}", source.as_str());
    let incident = match incident::parse(body, &origin, Some(source.format())) {
        Ok(i) => i,
        Err(IncidentError::Unsupported { message, .. }) => return Err(Rejected::Ignored(message)),
        Err(e) => return Err(Rejected::Malformed(e)),
    };
    let dedup_key = dedup_key(source, headers, body, &incident);
    Ok(Parsed {
        incident,
        dedup_key,
    })
}

/// Longest sender-given id kept as a key; longer ones are hashed.
const MAX_ID_CHARS: usize = 200;

fn dedup_key(source: Source, headers: &HeaderMap, body: &[u8], incident: &Incident) -> String {
    let mut hash = Sha256::new();
    match source {
        Source::Pagerduty => {
            let id = headers
                .get("x-webhook-id")
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty());
            match id {
                Some(id) if id.len() <= MAX_ID_CHARS => return format!("pagerduty:id:{id}"),
                Some(id) => hash.update(id.as_bytes()),
                None => hash.update(body),
            }
        }
        Source::Cloudevents => {
            for field in ["source", "id"] {
                let v = incident
                    .raw
                    .get(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or("");
                hash.update(v.len().to_le_bytes());
                hash.update(v.as_bytes());
            }
        }
        Source::Alertmanager | Source::Grafana => {
            let group = incident
                .raw
                .get("groupKey")
                .and_then(|v| v.as_str())
                .unwrap_or(&incident.id);
            hash.update(group.len().to_le_bytes());
            hash.update(group.as_bytes());
            let mut alerts: Vec<String> = incident
                .alerts
                .iter()
                .map(|a| {
                    let who = a
                        .fingerprint
                        .clone()
                        .unwrap_or_else(|| serde_json::to_string(&a.labels).unwrap_or_default());
                    let since = a.starts_at.map(|t| t.timestamp_millis()).unwrap_or(0);
                    format!("{who}\u{0}{}\u{0}{since}", a.status.as_str())
                })
                .collect();
            alerts.sort();
            for a in alerts {
                hash.update(a.len().to_le_bytes());
                hash.update(a.as_bytes());
            }
        }
    }
    format!("{}:{}", source.as_str(), hex::encode(hash.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn am(status: &str, starts: &str, receiver: &str) -> String {
        serde_json::json!({
            "version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": status,
            "receiver": receiver, "groupLabels": {"alertname": "X"},
            "commonLabels": {"alertname": "X"}, "commonAnnotations": {}, "externalURL": "http://am",
            "alerts": [{"status": status, "labels": {"alertname": "X"}, "annotations": {},
                        "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z", "fingerprint": "abc"}]
        })
        .to_string()
    }

    #[test]
    fn the_same_group_state_is_one_key_and_a_change_is_another() {
        let h = HeaderMap::new();
        let key = |body: String| {
            parse(Source::Alertmanager, &h, body.as_bytes())
                .map(|p| p.dedup_key)
                .unwrap_or_else(|_| panic!("parse"))
        };
        let a = key(am("firing", "2024-01-01T10:00:00Z", "irctl"));
        // A re-send from the other HA replica differs only outside the key.
        assert_eq!(a, key(am("firing", "2024-01-01T10:00:00Z", "irctl-b")));
        assert_ne!(a, key(am("resolved", "2024-01-01T10:00:00Z", "irctl")));
        assert_ne!(a, key(am("firing", "2024-01-01T11:00:00Z", "irctl")));
    }

    #[test]
    fn malformed_deliveries_name_the_problem() {
        let h = HeaderMap::new();
        match parse(Source::Alertmanager, &h, b"{\"alerts\": 3}") {
            Err(Rejected::Malformed(e)) => assert!(e.to_string().contains("alerts"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
