//! Resuming a run from its timeline (`irctl resume`).
//!
//! [`read`] rebuilds what an earlier run left: its incident, inputs,
//! provenance, how it ended, and the outputs of the steps that succeeded.
//! [`super::run`] with [`Resume`] in its options then treats those steps as
//! already succeeded — their recorded outputs feed `steps.ID.*` templates —
//! runs every other step again in DAG order, and appends to the same
//! timeline after a `run_resumed` event, continuing the hash chain.
//!
//! Recorded outputs are what the timeline holds: redacted (a secret in a
//! step's stdout is `***` in a later step's template), capped like every
//! captured output, and without HTTP response headers, which the timeline
//! does not record.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde_json::{Value, json};

use super::StepReport;
use super::context::{StepOutput, StepStatus};
use crate::incident::{Alert, Incident, Severity, Status};
use crate::playbook::{Playbook, Step};
use crate::timeline;

/// What [`super::run`] needs to continue a run.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The run being continued.
    pub run_id: String,
    /// When it first started (`run.started_at` in templates).
    pub started_at: String,
    /// This attempt's number (the first run is attempt 1).
    pub attempt: u32,
    /// Steps that succeeded in earlier attempts, with their recorded outputs.
    pub done: BTreeMap<String, StepOutput>,
    /// Extra fields for the `run_resumed` event (why it was forced, approvals).
    pub note: serde_json::Map<String, Value>,
}

/// How an earlier attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// `run_finished` with `succeeded`.
    Succeeded,
    /// `run_finished` with `failed`.
    Failed,
    /// `run_finished` with `cancelled`.
    Cancelled,
    /// No `run_finished`: the process was killed, or is still running.
    Unfinished,
}

impl Ended {
    /// How it reads in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Ended::Succeeded => "succeeded",
            Ended::Failed => "failed",
            Ended::Cancelled => "cancelled",
            Ended::Unfinished => "unfinished (killed, or still running)",
        }
    }
}

/// An earlier run, read back from its timeline.
#[derive(Debug)]
pub struct Prior {
    /// The run id.
    pub run_id: String,
    /// Its timeline file.
    pub path: PathBuf,
    /// The playbook's name.
    pub playbook: String,
    /// The recorded provenance (`repo`, `commit`, `path`, `blob`).
    pub provenance: Value,
    /// The incident as recorded.
    pub incident: Incident,
    /// The resolved inputs as recorded.
    pub inputs: serde_json::Map<String, Value>,
    /// Whether it was a drill.
    pub drill: bool,
    /// When it first started.
    pub started_at: String,
    /// Attempts so far.
    pub attempts: u32,
    /// How the last attempt ended.
    pub ended: Ended,
    /// Succeeded steps and their outputs.
    pub done: BTreeMap<String, StepOutput>,
    /// Steps that were started in some attempt (so running them again is a repeat).
    pub started: BTreeSet<String>,
    /// The timeline ended in a torn line.
    pub torn_tail: bool,
}

fn text(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A step's output as its `step_finished` event recorded it.
fn recorded_output(e: &timeline::Event) -> StepOutput {
    let d = &e.data;
    let mut out = StepOutput::empty(StepStatus::Succeeded);
    out.exit_code = d.get("exit_code").and_then(Value::as_i64).map(|c| c as i32);
    out.http_status = d
        .get("http_status")
        .and_then(Value::as_u64)
        .map(|s| s as u16);
    let field = |k: &str| {
        d.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    out.stdout = field("stdout");
    out.stderr = field("stderr");
    out.body = field("body");
    out.json = serde_json::from_str(&out.body).unwrap_or(Value::Null);
    out.duration_ms = d.get("duration_ms").and_then(Value::as_u64).unwrap_or(0);
    out.attempts = d.get("attempts").and_then(Value::as_u64).unwrap_or(0) as u32;
    out
}

/// Reads run `run_id` from `state_dir`.
pub fn read(state_dir: &Path, run_id: &str) -> anyhow::Result<Prior> {
    let path = super::timeline_path(state_dir, run_id)?;
    let tl = timeline::read(&path)?;
    if !tl.bad_lines.is_empty() {
        anyhow::bail!(
            "timeline `{}` has unreadable lines ({}); it cannot be resumed safely",
            path.display(),
            tl.bad_lines
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let Some(start) = tl.events.iter().find(|e| e.kind == "run_started") else {
        anyhow::bail!("timeline `{}` has no `run_started` event", path.display());
    };
    let d = Value::Object(start.data.clone());
    let incident = incident_from_recorded(d.get("incident").unwrap_or(&Value::Null))
        .with_context(|| format!("the incident recorded in `{}`", path.display()))?;
    let mut prior = Prior {
        run_id: run_id.to_string(),
        path,
        playbook: text(&d, "playbook"),
        provenance: d.get("provenance").cloned().unwrap_or(Value::Null),
        incident,
        inputs: d
            .get("inputs")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default(),
        drill: d.get("drill").and_then(Value::as_bool).unwrap_or(false),
        started_at: start.ts.clone(),
        attempts: 0,
        ended: Ended::Unfinished,
        done: BTreeMap::new(),
        started: BTreeSet::new(),
        torn_tail: tl.torn_tail,
    };
    for e in &tl.events {
        let step = e
            .data
            .get("step")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match e.kind.as_str() {
            "run_started" | "run_resumed" => {
                prior.attempts += 1;
                prior.ended = Ended::Unfinished;
                if let Some(p) = e.data.get("provenance") {
                    prior.provenance = p.clone();
                }
            }
            "run_finished" => {
                prior.ended = match e.data.get("status").and_then(Value::as_str) {
                    Some("succeeded") => Ended::Succeeded,
                    Some("failed") => Ended::Failed,
                    _ => Ended::Cancelled,
                }
            }
            "step_started" => {
                prior.started.insert(step.to_string());
            }
            "step_finished" => {
                if e.data.get("status").and_then(Value::as_str) == Some("succeeded") {
                    prior.done.insert(step.to_string(), recorded_output(e));
                } else {
                    prior.done.remove(step);
                }
            }
            _ => {}
        }
    }
    Ok(prior)
}

/// Why the current playbook file is not the one the run used, naming both.
pub fn changed_playbook(prior: &Prior, playbook: &Playbook) -> Option<String> {
    let recorded = text(&prior.provenance, "blob");
    let now = &playbook.provenance.blob;
    if recorded == *now {
        return None;
    }
    let describe = |blob: &str, commit: Option<&str>, path: &str| {
        let short = timeline::short_id(blob, 12);
        match commit {
            Some(c) => format!(
                "blob {short} at commit {} ({path})",
                timeline::short_id(c, 12)
            ),
            None => format!("blob {short} ({path})"),
        }
    };
    Some(format!(
        "playbook `{}` changed since run {}: it ran {}, the file is now {}",
        playbook.name,
        prior.run_id,
        describe(
            &recorded,
            prior.provenance.get("commit").and_then(Value::as_str),
            &text(&prior.provenance, "path")
        ),
        describe(
            now,
            playbook.provenance.commit.as_deref(),
            &playbook.provenance.path
        ),
    ))
}

/// Steps marked `idempotent: false` that already started in an earlier
/// attempt and would run again: running them twice needs a person's approval.
pub fn repeats_needing_approval<'a>(prior: &Prior, playbook: &'a Playbook) -> Vec<&'a Step> {
    playbook
        .steps
        .iter()
        .filter(|s| {
            !s.raw.idempotent && prior.started.contains(&s.id) && !prior.done.contains_key(&s.id)
        })
        .collect()
}

/// The `run_resumed` event.
pub(crate) fn event(r: &Resume, playbook: &Playbook, actor: &str, torn_tail_bytes: u64) -> Value {
    let mut v = json!({
        "attempt": r.attempt,
        "playbook": playbook.name,
        "provenance": playbook.provenance,
        "actor": actor,
        "reused": r.done.keys().collect::<Vec<_>>(),
    });
    if torn_tail_bytes > 0 {
        v["torn_tail_bytes"] = torn_tail_bytes.into();
    }
    for (k, val) in &r.note {
        v[k.as_str()] = val.clone();
    }
    v
}

/// Marks reused steps as succeeded in the scheduler's state, reports and outputs.
pub(super) fn seed(
    r: &Resume,
    steps: &[Step],
    state: &mut [super::State],
    reports: &mut [StepReport],
    outputs: &mut serde_json::Map<String, Value>,
) {
    for (i, s) in steps.iter().enumerate() {
        if let Some(out) = r.done.get(&s.id) {
            state[i] = super::State::Done(StepStatus::Succeeded);
            reports[i].status = StepStatus::Succeeded;
            reports[i].attempts = 0;
            reports[i].reason = Some("succeeded in an earlier attempt".into());
            outputs.insert(s.id.clone(), serde_json::to_value(out).unwrap_or_default());
        }
    }
}

fn map_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map_or_else(|| v.to_string(), str::to_string),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn time(v: &Value, key: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    v.get(key)
        .and_then(Value::as_str)
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn opt_text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_string)
}

fn status(v: &Value) -> Status {
    if v.get("status").and_then(Value::as_str) == Some("resolved") {
        Status::Resolved
    } else {
        Status::Firing
    }
}

/// Rebuilds the incident from the `incident` object `run_started` recorded
/// (the same object templates saw), so a resumed run sees the same incident.
fn incident_from_recorded(v: &Value) -> anyhow::Result<Incident> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("the recorded incident has no `id`"))?;
    let alerts = v
        .get("alerts")
        .and_then(Value::as_array)
        .map(|alerts| {
            alerts
                .iter()
                .map(|a| Alert {
                    status: status(a),
                    labels: map_of(a.get("labels").unwrap_or(&Value::Null)),
                    annotations: map_of(a.get("annotations").unwrap_or(&Value::Null)),
                    starts_at: time(a, "starts_at"),
                    ends_at: time(a, "ends_at"),
                    fingerprint: opt_text(a, "fingerprint"),
                    generator_url: opt_text(a, "generator_url"),
                    values: a.get("values").filter(|x| !x.is_null()).cloned(),
                    dashboard_url: opt_text(a, "dashboard_url"),
                    silence_url: opt_text(a, "silence_url"),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Incident {
        id: id.to_string(),
        title: text(v, "title"),
        severity: Severity::normalise(&text(v, "severity")),
        severity_raw: text(v, "severity_raw"),
        status: status(v),
        source: text(v, "source"),
        labels: map_of(v.get("labels").unwrap_or(&Value::Null)),
        annotations: map_of(v.get("annotations").unwrap_or(&Value::Null)),
        started_at: time(v, "started_at"),
        ended_at: time(v, "ended_at"),
        fingerprint: opt_text(v, "fingerprint"),
        url: opt_text(v, "url"),
        alerts,
        raw: v.get("raw").cloned().unwrap_or(Value::Null),
    })
}
