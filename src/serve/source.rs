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

use std::sync::Arc;

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::incident::{self, Incident, IncidentError, IncidentFormat, Mapping};

/// A sender, and the endpoint it posts to (`/hooks/<name>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// Prometheus Alertmanager's webhook receiver.
    Alertmanager,
    /// Grafana's webhook contact point.
    Grafana,
    /// PagerDuty V3 webhooks.
    Pagerduty,
    /// CloudEvents 1.0 (JSON event format).
    Cloudevents,
    /// A declarative payload mapping of the playbook source
    /// (`sources/NAME.yaml`), by its name.
    Mapping(Arc<str>),
}

/// How a mapping's deliveries are named in the store.
const MAPPING_PREFIX: &str = "mapping:";

impl Source {
    /// Every built-in source.
    pub const ALL: &[Source] = &[
        Source::Alertmanager,
        Source::Grafana,
        Source::Pagerduty,
        Source::Cloudevents,
    ];

    /// The endpoint's name, in paths and messages (a mapping's name).
    pub fn as_str(&self) -> &str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Grafana => "grafana",
            Source::Pagerduty => "pagerduty",
            Source::Cloudevents => "cloudevents",
            Source::Mapping(name) => name,
        }
    }

    /// The built-in source named `name`.
    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.iter().find(|s| s.as_str() == name).cloned()
    }

    /// The source for the endpoint `/hooks/<name>`: a built-in one, else
    /// one of `mappings` by exact name; `name` is only ever compared, never
    /// used as a path. A mapping named like a built-in payload format is
    /// not reachable, since `irctl run --incident-format` would read that
    /// format instead.
    pub fn for_hook(name: &str, mappings: &[Mapping]) -> Option<Source> {
        Source::from_name(name).or_else(|| {
            mappings
                .iter()
                .find(|m| m.name == name && reachable(&m.name))
                .map(|m| Source::Mapping(Arc::from(m.name.as_str())))
        })
    }

    /// The name in the store and in metrics: a built-in source's name, or
    /// `mapping:NAME`.
    pub fn store_name(&self) -> String {
        match self {
            Source::Mapping(name) => format!("{MAPPING_PREFIX}{name}"),
            other => other.as_str().to_string(),
        }
    }

    /// The source [`Source::store_name`] wrote.
    pub fn from_store_name(name: &str) -> Option<Source> {
        match name.strip_prefix(MAPPING_PREFIX) {
            Some(m) => Some(Source::Mapping(Arc::from(m))),
            None => Source::from_name(name),
        }
    }

    /// What `irctl run --incident-format` is told: a built-in format's
    /// name, or the mapping's.
    pub fn format_name(&self) -> &str {
        match (self, self.format()) {
            (Source::Mapping(name), _) => name,
            (_, Some(format)) => format.as_str(),
            (_, None) => self.as_str(),
        }
    }

    /// The built-in payload format its deliveries are read as; `None` for a
    /// mapping.
    pub const fn format(&self) -> Option<IncidentFormat> {
        match self {
            Source::Alertmanager => Some(IncidentFormat::Alertmanager),
            Source::Grafana => Some(IncidentFormat::Grafana),
            Source::Pagerduty => Some(IncidentFormat::PagerdutyWebhook),
            Source::Cloudevents => Some(IncidentFormat::Cloudevents),
            Source::Mapping(_) => None,
        }
    }
}

/// Whether a mapping named `name` can have its own endpoint (see
/// [`Source::for_hook`]).
pub fn reachable(name: &str) -> bool {
    Source::from_name(name).is_none() && name.parse::<IncidentFormat>().is_err()
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

/// Parses `body`, posted to `source`'s endpoint with `headers`; a
/// mapping's delivery is read by its mapping among `mappings`.
pub fn parse(
    source: &Source,
    headers: &HeaderMap,
    body: &[u8],
    mappings: &[Mapping],
) -> Result<Parsed, Rejected> {
    let origin = format!("/hooks/{}", source.as_str());
    let parsed = match source {
        Source::Mapping(name) => incident::parse_with(body, &origin, Some(name), mappings),
        _ => incident::parse(body, &origin, source.format()),
    };
    let incident = match parsed {
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

fn dedup_key(source: &Source, headers: &HeaderMap, body: &[u8], incident: &Incident) -> String {
    let mut hash = Sha256::new();
    match source {
        // A mapped sender has no delivery id irctl knows: a copy of one
        // delivery is the same bytes.
        Source::Mapping(_) => hash.update(body),
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
    format!("{}:{}", source.store_name(), hex::encode(hash.finalize()))
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
            parse(&Source::Alertmanager, &h, body.as_bytes(), &[])
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
        match parse(&Source::Alertmanager, &h, b"{\"alerts\": 3}", &[]) {
            Err(Rejected::Malformed(e)) => assert!(e.to_string().contains("alerts"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}
