//! Payloads of an incident's log, kept apart from any one run: its
//! detection, acknowledgement and resolution, people's notes, hand-offs to
//! other teams and their reminders, and the notices to impacted teams.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `note`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Note {
    /// Who wrote it.
    pub author: String,
    /// What they saw or did.
    pub text: String,
    /// When it happened (RFC 3339).
    pub at: String,
    /// Marks the moment the impact ended (`--mitigated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mitigated: Option<bool>,
}

/// `detected`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Detected {
    /// When it fired (RFC 3339).
    pub at: String,
    /// Who recorded it.
    pub by: String,
    /// The payload's format.
    pub source: String,
    /// The incident's title.
    pub title: String,
    /// Its normalised severity.
    pub severity: String,
    /// The normalised incident, without the raw payload.
    pub incident: Value,
}

/// `resolved`: by a person (`irctl resolve`) or a resolved payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resolved {
    /// When it was resolved (RFC 3339).
    pub at: String,
    /// Who recorded it.
    pub by: String,
    /// `irctl resolve`, or the payload's format.
    pub source: String,
    /// What fixed it, from `--summary`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The payload's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The payload's normalised severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// The payload's normalised incident.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<Value>,
}

/// `acknowledged`: a payload saying someone took the incident (PagerDuty's
/// `incident.acknowledged`, an Events API `acknowledge`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Acknowledged {
    /// When it was acknowledged (RFC 3339).
    pub at: String,
    /// Who recorded it.
    pub by: String,
    /// The payload's format.
    pub source: String,
    /// The incident's title.
    pub title: String,
}

/// `handoff`: the incident was handed to a team; it owns the incident
/// only once it accepts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    /// When it was handed off (RFC 3339).
    pub at: String,
    /// Who handed it off.
    pub by: String,
    /// The receiving team's canonical reference.
    pub to: String,
    /// What the sender wrote with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where each channel of the team was sent the packet, and how it answered.
    pub sent: Vec<Sent>,
    /// The Markdown packet written for pasting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet: Option<String>,
    /// How long it may wait for acceptance before it is announced again,
    /// when the sender chose (`--remind-after`); else the team's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remind_after_ms: Option<u64>,
}

/// One channel a hand-off (or its reminder) was sent to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sent {
    /// `slack`, `teams`, `pagerduty` or `webhook`.
    pub target: String,
    /// The service's last HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Why it did not take the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `handoff_accepted`: the receiving team took the incident, and owns it now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandoffAccepted {
    /// When (RFC 3339).
    pub at: String,
    /// Who accepted, for the team.
    pub by: String,
    /// The team that now owns the incident.
    pub team: String,
    /// The `seq` of the `handoff` event accepted.
    pub handoff: u64,
    /// From the hand-off to its acceptance.
    pub latency_ms: u64,
    /// How it was accepted (`irctl handoff accept`, `slack`); absent in
    /// records written before irctl said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
}

/// `handoff_reminded`: a hand-off still not accepted was announced again,
/// or escalated to the team's pagers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HandoffReminded {
    /// When (RFC 3339).
    pub at: String,
    /// The team reminded.
    pub team: String,
    /// The `seq` of the `handoff` event.
    pub handoff: u64,
    /// Which interval since the hand-off this covers (1 = the first).
    pub reminder: u32,
    /// Whether the team's PagerDuty channels were paged.
    pub escalated: bool,
    /// Where it was sent, and how each channel answered.
    pub sent: Vec<Sent>,
}

/// `impact_notice`: a team whose services the incident impacts was sent
/// an impact notice by a routing or remediation run (`notify: { team:
/// impacted }`), or was found not reachable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImpactNotice {
    /// When (RFC 3339).
    pub at: String,
    /// The impacted team's canonical reference.
    pub team: String,
    /// Its services the incident impacts (canonical references).
    pub services: Vec<String>,
    /// The playbook whose step sent it.
    pub playbook: String,
    /// The run.
    pub run: String,
    /// The step.
    pub step: String,
    /// Where it was sent (`slack`, `webhook`, …); empty when nothing could be.
    pub sent: Vec<String>,
    /// Why some or all channels were not used (`secret X not set`, `not in
    /// teams.yaml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}
