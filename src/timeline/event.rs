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

use super::Payload;
use super::chain::ChainKey;
use crate::id::RunId;
use serde::ser::SerializeMap as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

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
            Payload::Acknowledged(a) => &a.at,
            Payload::AlertRepeated(r) => &r.at,
            Payload::RunThrottled(r) => &r.at,
            Payload::Handoff(h) => &h.at,
            Payload::HandoffAccepted(h) => &h.at,
            Payload::HandoffReminded(h) => &h.at,
            Payload::ImpactNotice(n) => &n.at,
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

impl Event {
    /// The event as the JSON object it is written as, in written order,
    /// without `hash`: what the chain hash covers, built with one copy of
    /// the payload so a writer can hash and write it without serialising the
    /// event twice. Equal to serialising the event with an empty `hash`.
    pub(super) fn unhashed_object(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("ts".into(), Value::String(self.ts.clone()));
        map.insert("seq".into(), Value::from(self.seq));
        map.insert(
            "run_id".into(),
            Value::String(self.run_id.as_str().to_string()),
        );
        map.insert(
            "incident_id".into(),
            Value::String(self.incident_id.clone()),
        );
        map.insert("type".into(), Value::String(self.kind().to_string()));
        let extra = self.extra.iter().map(|(k, v)| (k.clone(), v.clone()));
        for (k, v) in self.payload.fields().into_iter().chain(extra) {
            if !ENVELOPE.contains(&k.as_str()) {
                map.insert(k, v);
            }
        }
        map
    }
}

/// A JSON value serialised with every object's keys sorted (the canonical
/// form the chain hash covers), without building a sorted copy first.
struct Canonical<'a>(&'a Value);

/// A JSON object serialised with its keys sorted, its values canonical.
struct CanonicalObject<'a>(&'a Map<String, Value>);

impl Serialize for Canonical<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq as _;
        match self.0 {
            Value::Object(map) => CanonicalObject(map).serialize(serializer),
            Value::Array(items) => {
                let mut out = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    out.serialize_element(&Canonical(item))?;
                }
                out.end()
            }
            other => other.serialize(serializer),
        }
    }
}

impl Serialize for CanonicalObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let sorted: BTreeMap<&String, &Value> = self.0.iter().collect();
        let mut out = serializer.serialize_map(Some(sorted.len()))?;
        for (k, v) in sorted {
            out.serialize_entry(k, &Canonical(v))?;
        }
        out.end()
    }
}

/// The chain hash after `prev` of an event given as its
/// [`Event::unhashed_object`]: plain hex without a key, `hmac-sha256:<hex>`
/// with one (see [`super::chain`]).
pub(super) fn hash_object(
    prev: &str,
    object: &Map<String, Value>,
    key: Option<&ChainKey>,
) -> String {
    // Writing JSON into memory cannot fail.
    let text = serde_json::to_vec(&CanonicalObject(object)).unwrap_or_default();
    super::chain::link(prev, &text, key)
}

/// The chain hash of `event` after `prev` (hex): SHA-256 over `prev`, a
/// newline, and the event's canonical JSON (sorted keys, without `hash`).
pub fn chain_hash(prev: &str, event: &Event) -> String {
    hash_object(prev, &event.unhashed_object(), None)
}

/// The chain hash of `event` after `prev` in the scheme `key` says: the
/// same as [`chain_hash`] without a key, HMAC-SHA256 under it with one.
pub fn chain_hash_with(prev: &str, event: &Event, key: Option<&ChainKey>) -> String {
    hash_object(prev, &event.unhashed_object(), key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::{RunStatus, StepSimulated};
    use sha2::{Digest, Sha256};

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

    /// The chain hash as first defined: a sorted deep copy of the event's
    /// serialised value, printed.
    fn reference_hash(prev: &str, event: &Event) -> String {
        fn sorted(v: &Value) -> Value {
            match v {
                Value::Object(map) => {
                    let keys: BTreeMap<&String, &Value> = map.iter().collect();
                    Value::Object(
                        keys.into_iter()
                            .map(|(k, v)| (k.clone(), sorted(v)))
                            .collect(),
                    )
                }
                Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
                other => other.clone(),
            }
        }
        let mut unhashed = event.clone();
        unhashed.hash.clear();
        let text =
            serde_json::to_string(&sorted(&serde_json::to_value(&unhashed).unwrap())).unwrap();
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(b"\n");
        h.update(text.as_bytes());
        hex::encode(h.finalize())
    }

    #[test]
    fn the_writer_writes_and_hashes_what_serialising_the_event_gives() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        let redactor = crate::secret::Redactor::new(&[]);
        let mut w = super::super::Writer::open(&path, &"r".into(), "i", redactor).unwrap();
        let first = w
            .append(StepSimulated {
                step: "s".into(),
                action: serde_json::json!({ "z": [ { "b": 1, "a": [2.5, null] } ], "a": "\u{e9}\"\n" }),
            })
            .unwrap();
        let second = w
            .append(StepSimulated {
                step: "t".into(),
                action: serde_json::json!({ "hash": "x", "seq": 9 }),
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let expected = format!(
            "{}\n{}\n",
            serde_json::to_string(&first).unwrap(),
            serde_json::to_string(&second).unwrap()
        );
        assert_eq!(text, expected);
        assert_eq!(first.hash, reference_hash("", &first));
        assert_eq!(second.hash, reference_hash(&first.hash, &second));
        assert_eq!(chain_hash(&first.hash, &second), second.hash);
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
