//! The payloads: one type per event type, with the fields it writes in the
//! order it writes them, and [`Payload`] tying them to their `type` names.
//! A field written only when it applies is skipped when empty; a field
//! always written is `null` when empty — exactly as earlier releases wrote.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::id::StepId;

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed.
    Failed,
    /// It ran past its timeout and was killed.
    TimedOut,
    /// The run was interrupted while it ran, or before it could start.
    Cancelled,
    /// It did not run (trigger or `when`).
    Skipped,
    /// A drill recorded what it would have done instead of doing it.
    Simulated,
}

impl StepStatus {
    /// The name used in the timeline and tables.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::TimedOut => "timed_out",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Skipped => "skipped",
            StepStatus::Simulated => "simulated",
        }
    }

    /// Whether the step ran into trouble (for `on_failure` triggers).
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            StepStatus::Failed | StepStatus::TimedOut | StepStatus::Cancelled
        )
    }
}

/// The outcome of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every step succeeded, was skipped, or failed with `continue_on_error`.
    Succeeded,
    /// A step failed.
    Failed,
    /// Interrupted.
    Cancelled,
}

impl RunStatus {
    /// Name in the timeline.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }
}

/// Where a playbook came from, precisely enough to reproduce the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// Repository URL or path, when loaded from Git or a Git worktree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The ref asked for.
    #[serde(default, rename = "ref", skip_serializing_if = "Option::is_none")]
    pub git_ref: Option<String>,
    /// The commit the file was read at (or the worktree's HEAD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The file path as shown to users.
    pub path: String,
    /// The Git blob id of the file's exact bytes.
    pub blob: String,
    /// For a worktree: whether the file differs from HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dirty: Option<bool>,
}

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

/// `run_started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunStarted {
    /// The playbook's name.
    pub playbook: String,
    /// Its title.
    pub title: String,
    /// Its owner.
    pub owner: Option<String>,
    /// Which version of the file ran.
    pub provenance: Provenance,
    /// The incident as templates saw it (see [`super::RecordedIncident`]).
    pub incident: Value,
    /// The resolved inputs.
    pub inputs: Map<String, Value>,
    /// Whether this is a drill.
    pub drill: bool,
    /// Steps running at once.
    pub concurrency: usize,
    /// Who ran it.
    pub actor: String,
    /// The step ids, in playbook order.
    pub steps: Vec<StepId>,
    /// The steps marked `report: true`, whose output the postmortem quotes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub report: Vec<StepId>,
}

/// `run_resumed`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResumed {
    /// This attempt's number (the first run is attempt 1).
    pub attempt: u32,
    /// The playbook's name.
    pub playbook: String,
    /// Which version of the file runs now.
    pub provenance: Provenance,
    /// Who resumed it.
    pub actor: String,
    /// Steps that succeeded earlier and are not run again.
    pub reused: Vec<StepId>,
    /// Bytes of a torn last line cut off before resuming.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torn_tail_bytes: Option<u64>,
    /// Why it resumed as it did.
    #[serde(flatten)]
    pub note: ResumeNote,
}

/// What `irctl resume` decided before continuing a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ResumeNote {
    /// How the previous attempt ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The hash chain was broken, and how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain_broken: Option<String>,
    /// Resumed although the playbook file changed (`--force`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced: Option<bool>,
    /// The provenance the earlier attempts recorded, when forced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded_provenance: Option<Provenance>,
    /// Who approved running `idempotent: false` steps again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_repeats: Option<Vec<Approval>>,
}

/// An approval to run a step again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Approval {
    /// The step.
    pub step: StepId,
    /// Who approved.
    pub by: String,
    /// How (`tty` or `--yes`).
    pub via: String,
}

/// `warning`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    /// What to know.
    pub message: String,
}

/// `step_started`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepStarted {
    /// The step.
    pub step: StepId,
    /// Which attempt, from 1.
    pub attempt: u32,
    /// `shell`, `http` or `notify`.
    pub kind: String,
    /// The rendered command or request (see [`super::describe::action_text`]).
    pub action: Value,
}

/// `step_retrying`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRetrying {
    /// The step.
    pub step: StepId,
    /// The attempt that failed.
    pub attempt: u32,
    /// How it ended.
    pub status: StepStatus,
    /// Why.
    pub error: Option<String>,
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// The HTTP status.
    pub http_status: Option<u16>,
    /// The wait before the next attempt.
    pub delay_ms: u64,
}

/// `step_finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepFinished {
    /// The step.
    pub step: StepId,
    /// How it ended.
    pub status: StepStatus,
    /// Attempts made (0 when it ended before its first).
    pub attempts: u32,
    /// Time taken.
    pub duration_ms: u64,
    /// What the last attempt captured; absent when the step ended without
    /// one to report (before any attempt, or cancelled while waiting to retry).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Captured>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the run goes on despite this failure; written with the output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_on_error: Option<bool>,
}

/// What an attempt captured (each text capped).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Captured {
    /// The process's exit code.
    pub exit_code: Option<i32>,
    /// The HTTP status.
    pub http_status: Option<u16>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The HTTP response body, when there was one.
    pub body: Option<String>,
}

/// `step_skipped`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSkipped {
    /// The step.
    pub step: StepId,
    /// `skipped` or `cancelled`.
    pub status: StepStatus,
    /// Why.
    pub reason: String,
}

/// `step_simulated`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepSimulated {
    /// The step.
    pub step: StepId,
    /// The rendered command or request it would have run.
    pub action: Value,
}

/// `confirmation`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Confirmation {
    /// The step.
    pub step: StepId,
    /// What was asked.
    pub question: String,
    /// `yes` or `no`.
    pub answer: String,
    /// Who answered.
    pub by: String,
    /// How (`tty`, `--yes`, `irctl approve`, or the timeout).
    pub via: String,
    /// Why, as the answerer said (`irctl approve --reason`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `approval_requested`: nobody could be asked on a terminal, so the step
/// waits for an answer given with `irctl approve` from another process.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequested {
    /// The step.
    pub step: StepId,
    /// What is asked.
    pub question: String,
    /// How long it waits before the step is declined.
    pub timeout_ms: u64,
    /// When it stops waiting (RFC 3339).
    pub deadline: String,
    /// The command that approves.
    pub approve: String,
    /// The command that declines.
    pub deny: String,
}

/// `notification`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// The step.
    pub step: StepId,
    /// `console`, `slack`, `teams`, `pagerduty` or `webhook`.
    pub target: String,
    /// What the console showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The service's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
}

/// `run_cancelled`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunCancelled {
    /// `SIGINT`, `SIGTERM`, or the timeout reached.
    pub signal: String,
}

/// `run_finished`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunFinished {
    /// How it ended.
    pub status: RunStatus,
    /// This attempt's wall time.
    pub duration_ms: u64,
}

/// `engine_error`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EngineError {
    /// What failed.
    pub error: String,
}

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

/// `alert_repeated`: the payload of an incident whose playbook already ran
/// in this episode arrived again, and nothing was run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AlertRepeated {
    /// When the repeat arrived (RFC 3339).
    pub at: String,
    /// Who ran `irctl run`.
    pub by: String,
    /// The payload's format.
    pub source: String,
    /// The playbook that was not run again.
    pub playbook: String,
    /// The earlier run of it; absent while that run is still being started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub earlier_run: Option<String>,
}

/// `run_throttled`: a playbook was not run for this incident because one
/// of its limits across incidents held.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunThrottled {
    /// When it was decided (RFC 3339).
    pub at: String,
    /// Who ran `irctl run`.
    pub by: String,
    /// The payload's format.
    pub source: String,
    /// The playbook that was not run.
    pub playbook: String,
    /// The limit that held, as written (`once_within: 30m`,
    /// `max_runs: 3 per 1h`, `concurrency: 2`).
    pub rule: String,
    /// When the playbook may run again (RFC 3339); absent for `concurrency`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<String>,
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
