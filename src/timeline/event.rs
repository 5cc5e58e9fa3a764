//! The event model: one envelope (`ts`, `seq`, `run_id`, `incident_id`,
//! `hash`) around a typed [`Payload`], one variant per event type.
//!
//! The JSON is exactly what earlier releases wrote, byte for byte: the
//! envelope first, then `type`, then the payload's fields in their written
//! order, then `hash`. A field that was written only when it applied is
//! absent when it does not; a field that was always written is `null` when
//! empty. Reading keeps whatever this version does not know — an unknown
//! event type ([`Payload::Other`]), or fields a newer writer added
//! ([`Event::extra`]) — so every event re-serialises to the content it was
//! read from and its chain hash still verifies.

use std::collections::BTreeMap;

use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Payload;
use crate::id::RunId;

/// One timeline event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// When it happened (RFC 3339, UTC, milliseconds).
    pub ts: String,
    /// Position in the file, from 1.
    pub seq: u64,
    /// The run (empty in an incident log, unless the event is about a run).
    pub run_id: RunId,
    /// The incident.
    pub incident_id: String,
    /// What happened.
    pub payload: Payload,
    /// Fields of a known event type that this version does not know (a
    /// newer writer's), kept so the event re-serialises unchanged.
    pub extra: Map<String, Value>,
    /// Chain hash over the previous hash and this event.
    pub hash: String,
}

impl Event {
    /// The event type, as the `type` field writes it.
    pub fn kind(&self) -> &str {
        self.payload.kind()
    }

    /// The step the event is about, if any.
    pub fn step(&self) -> Option<&str> {
        self.payload.step()
    }

    /// When the event says it happened: the `at` of a note, detection or
    /// resolution recorded after the fact, else when it was written.
    pub fn at(&self) -> &str {
        match &self.payload {
            Payload::Note(n) => &n.at,
            Payload::Detected(d) => &d.at,
            Payload::Resolved(r) => &r.at,
            _ => &self.ts,
        }
    }
}

const ENVELOPE: [&str; 6] = ["ts", "seq", "run_id", "incident_id", "type", "hash"];

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self.payload.fields();
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("ts", &self.ts)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("run_id", &self.run_id)?;
        map.serialize_entry("incident_id", &self.incident_id)?;
        map.serialize_entry("type", self.kind())?;
        // The envelope's names are the envelope's, whatever a payload holds.
        for (k, v) in fields.iter().chain(&self.extra) {
            if !ENVELOPE.contains(&k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        if !self.hash.is_empty() {
            map.serialize_entry("hash", &self.hash)?;
        }
        map.end()
    }
}

/// The envelope as read: the same shape (and so the same errors, with their
/// positions) as events have always been parsed with.
#[derive(Deserialize)]
struct Envelope {
    ts: String,
    seq: u64,
    run_id: RunId,
    incident_id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    fields: Map<String, Value>,
    #[serde(default)]
    hash: String,
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let e = Envelope::deserialize(deserializer)?;
        let (payload, extra) = Payload::read(&e.kind, e.fields);
        Ok(Event {
            ts: e.ts,
            seq: e.seq,
            run_id: e.run_id,
            incident_id: e.incident_id,
            payload,
            extra,
            hash: e.hash,
        })
    }
}

fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: BTreeMap<&String, &Value> = map.iter().collect();
            Value::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.clone(), canonical(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The chain hash of `event` after `prev` (hex): SHA-256 over `prev`, a
/// newline, and the event's canonical JSON (sorted keys, without `hash`).
pub fn chain_hash(prev: &str, event: &Event) -> String {
    let mut unhashed = event.clone();
    unhashed.hash.clear();
    let value = serde_json::to_value(&unhashed).unwrap_or_default();
    let text = serde_json::to_string(&canonical(&value)).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(prev.as_bytes());
    h.update(b"\n");
    h.update(text.as_bytes());
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{RunStatus, StepSimulated};

    fn round_trip(line: &str) -> Event {
        let e: Event = serde_json::from_str(line).unwrap();
        assert_eq!(serde_json::to_string(&e).unwrap(), line);
        e
    }

    #[test]
    fn unknown_types_and_fields_are_kept_as_written() {
        let e = round_trip(
            r#"{"ts":"t","seq":1,"run_id":"r","incident_id":"i","type":"approval_requested","step":"x","who":["a"],"hash":"h"}"#,
        );
        assert!(matches!(&e.payload, Payload::Other { kind, .. } if kind == "approval_requested"));
        let e = round_trip(
            r#"{"ts":"t","seq":2,"run_id":"r","incident_id":"i","type":"run_finished","status":"failed","duration_ms":5,"reason":"newer"}"#,
        );
        assert!(matches!(&e.payload, Payload::RunFinished(f) if f.status == RunStatus::Failed));
        assert_eq!(e.extra.get("reason"), Some(&Value::from("newer")));
    }

    #[test]
    fn a_known_type_that_does_not_fit_is_kept_whole() {
        // `null` where the writer leaves the field out, and a status this
        // version does not know: neither may be rewritten on the way through.
        for line in [
            r#"{"ts":"t","seq":1,"run_id":"r","incident_id":"i","type":"note","author":"a","text":"x","at":"t","mitigated":null}"#,
            r#"{"ts":"t","seq":1,"run_id":"r","incident_id":"i","type":"step_skipped","step":"s","status":"paused","reason":"r"}"#,
        ] {
            let e: Event = serde_json::from_str(line).unwrap();
            let again: Value = serde_json::to_value(&e).unwrap();
            assert_eq!(again, serde_json::from_str::<Value>(line).unwrap());
        }
    }

    #[test]
    fn a_broken_envelope_is_not_an_event() {
        for line in [
            r#"{"seq":1,"run_id":"r","incident_id":"i","type":"warning","message":"m"}"#,
            r#"{"ts":"t","seq":"1","run_id":"r","incident_id":"i","type":"warning","message":"m"}"#,
            r#"{"ts":"t","seq":1,"run_id":"r","incident_id":"i","message":"m"}"#,
        ] {
            assert!(serde_json::from_str::<Event>(line).is_err(), "{line}");
        }
    }

    #[test]
    fn the_writer_redacts_every_string_and_keeps_the_type() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let redactor =
            crate::secret::Redactor::new(&[crate::secret::Secret::new("hunter2".to_string())]);
        let mut w = super::super::Writer::open(&path, &"r".into(), "i", redactor).unwrap();
        let e = w
            .append(StepSimulated {
                step: "s".into(),
                action: serde_json::json!({ "shell": "login hunter2", "env": { "hunter2": "x" } }),
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(
            matches!(&e.payload, Payload::StepSimulated(p) if p.action["shell"] == "login ***")
        );
        assert_eq!(chain_hash("", &e), e.hash);
    }
}
