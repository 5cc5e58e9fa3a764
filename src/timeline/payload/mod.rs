//! The payloads: one type per event type, with the fields it writes in the
//! order it writes them, and [`Payload`] tying them to their `type` names.
//! A field written only when it applies is skipped when empty; a field
//! always written is `null` when empty — exactly as earlier releases wrote.
//!
//! This file holds [`Payload`] and the one table of event types; the
//! payload types live in submodules by where they are written (a run's
//! steps, the incident log, the decisions on whether something runs) and
//! are re-exported here, so every path stays `timeline::X`.

mod incident;
mod lifecycle;
mod run;

use serde_json::{Map, Value};

pub use self::incident::{
    Acknowledged, Detected, Handoff, HandoffAccepted, HandoffReminded, ImpactNotice, Note,
    Resolved, Sent,
};
pub use self::lifecycle::{AlertRepeated, ApprovalRequested, Confirmation, RunThrottled};
pub use self::run::{
    Approval, Captured, EngineError, Notification, Provenance, ResumeNote, RunCancelled,
    RunFinished, RunResumed, RunStarted, RunStatus, StepFinished, StepRetrying, StepSimulated,
    StepSkipped, StepStarted, StepStatus, Warning,
};

/// What happened: one variant per event type.
#[derive(Clone, Debug, PartialEq)]
pub enum Payload {
    /// A run began (`run_started`).
    RunStarted(RunStarted),
    /// A run continued in a later attempt (`run_resumed`).
    RunResumed(RunResumed),
    /// Something to know about the run (`warning`).
    Warning(Warning),
    /// An attempt of a step began (`step_started`).
    StepStarted(StepStarted),
    /// An attempt failed and another follows (`step_retrying`).
    StepRetrying(StepRetrying),
    /// A step ended (`step_finished`).
    StepFinished(StepFinished),
    /// A step did not run (`step_skipped`).
    StepSkipped(StepSkipped),
    /// A drill recorded a step instead of running it (`step_simulated`).
    StepSimulated(StepSimulated),
    /// A person (or `--yes`) answered a step's `confirm` (`confirmation`).
    Confirmation(Confirmation),
    /// A step's `confirm` waits for `irctl approve` (`approval_requested`).
    ApprovalRequested(ApprovalRequested),
    /// A notification was delivered (`notification`).
    Notification(Notification),
    /// The run was interrupted (`run_cancelled`).
    RunCancelled(RunCancelled),
    /// A run ended (`run_finished`).
    RunFinished(RunFinished),
    /// The engine itself failed (`engine_error`).
    EngineError(EngineError),
    /// A person's note (`note`, incident log).
    Note(Note),
    /// A firing payload was recorded (`detected`, incident log).
    Detected(Detected),
    /// The incident was resolved (`resolved`, incident log).
    Resolved(Resolved),
    /// Someone took the incident in the sender (`acknowledged`, incident log).
    Acknowledged(Acknowledged),
    /// A payload arrived again for a playbook that already ran in this
    /// episode, and was not run again (`alert_repeated`, incident log).
    AlertRepeated(AlertRepeated),
    /// A playbook was not run because its `once_within`, `max_runs` or
    /// `concurrency` limit held (`run_throttled`, incident log).
    RunThrottled(RunThrottled),
    /// The incident was handed to a team (`handoff`, incident log).
    Handoff(Handoff),
    /// The receiving team took the incident (`handoff_accepted`, incident log).
    HandoffAccepted(HandoffAccepted),
    /// An unaccepted hand-off was announced again or escalated
    /// (`handoff_reminded`, incident log).
    HandoffReminded(HandoffReminded),
    /// A team whose service the incident impacts was told, or could not be
    /// (`impact_notice`, incident log): once per team per episode.
    ImpactNotice(ImpactNotice),
    /// An event type this version does not know, kept as written.
    Other {
        /// Its `type`.
        kind: String,
        /// Its fields, in written order.
        fields: Map<String, Value>,
    },
}

/// Expands to the one table of event types: name, variant, payload type.
macro_rules! kinds {
    ($($name:literal => $variant:ident),* $(,)?) => {
        impl Payload {
            /// The event type, as the `type` field writes it.
            pub fn kind(&self) -> &str {
                match self {
                    $(Payload::$variant(_) => $name,)*
                    Payload::Other { kind, .. } => kind,
                }
            }

            /// The payload's own fields, in written order.
            pub fn fields(&self) -> Map<String, Value> {
                let value = match self {
                    $(Payload::$variant(p) => serde_json::to_value(p),)*
                    Payload::Other { fields, .. } => return fields.clone(),
                };
                match value {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                }
            }

            /// The typed payload of `kind` from `fields`, with the fields it
            /// does not know; `None` when they do not fit the type.
            fn typed(kind: &str, fields: &Map<String, Value>) -> Option<Payload> {
                let value = Value::Object(fields.clone());
                match kind {
                    $($name => serde_json::from_value(value).ok().map(Payload::$variant),)*
                    _ => None,
                }
            }
        }

        $(impl From<$variant> for Payload {
            fn from(p: $variant) -> Payload {
                Payload::$variant(p)
            }
        })*
    };
}

kinds! {
    "run_started" => RunStarted,
    "run_resumed" => RunResumed,
    "warning" => Warning,
    "step_started" => StepStarted,
    "step_retrying" => StepRetrying,
    "step_finished" => StepFinished,
    "step_skipped" => StepSkipped,
    "step_simulated" => StepSimulated,
    "confirmation" => Confirmation,
    "approval_requested" => ApprovalRequested,
    "notification" => Notification,
    "run_cancelled" => RunCancelled,
    "run_finished" => RunFinished,
    "engine_error" => EngineError,
    "note" => Note,
    "detected" => Detected,
    "resolved" => Resolved,
    "acknowledged" => Acknowledged,
    "alert_repeated" => AlertRepeated,
    "run_throttled" => RunThrottled,
    "handoff" => Handoff,
    "handoff_accepted" => HandoffAccepted,
    "handoff_reminded" => HandoffReminded,
    "impact_notice" => ImpactNotice,
}

impl Payload {
    /// The step the event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Payload::StepStarted(p) => Some(p.step.as_str()),
            Payload::StepRetrying(p) => Some(p.step.as_str()),
            Payload::StepFinished(p) => Some(p.step.as_str()),
            Payload::StepSkipped(p) => Some(p.step.as_str()),
            Payload::StepSimulated(p) => Some(p.step.as_str()),
            Payload::Confirmation(p) => Some(p.step.as_str()),
            Payload::ApprovalRequested(p) => Some(p.step.as_str()),
            Payload::Notification(p) => Some(p.step.as_str()),
            _ => None,
        }
    }

    /// Reads the payload of `kind` from `fields`: typed when the fields fit
    /// the type exactly (every field it writes is there, as written), with
    /// the fields it does not know returned apart; else kept as
    /// [`Payload::Other`], so nothing read is ever changed.
    pub fn read(kind: &str, fields: Map<String, Value>) -> (Payload, Map<String, Value>) {
        if let Some(typed) = Payload::typed(kind, &fields) {
            let written = typed.fields();
            let faithful = written.iter().all(|(k, v)| fields.get(k) == Some(v));
            if faithful {
                let extra = fields
                    .into_iter()
                    .filter(|(k, _)| !written.contains_key(k))
                    .collect();
                return (typed, extra);
            }
        }
        (
            Payload::Other {
                kind: kind.to_string(),
                fields,
            },
            Map::new(),
        )
    }
}
