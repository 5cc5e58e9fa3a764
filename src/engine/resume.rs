//! Resuming a run from its timeline (`irctl resume`).
//!
//! [`read`] rebuilds what an earlier run left: its incident, inputs,
//! provenance, how it ended, and the outputs of the steps that succeeded.
//! [`reusable`] keeps those whose ancestors are all reused too, and
//! [`super::run`] with [`Resume`] in its options then treats them as
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
use serde_json::Value;

use super::StepReport;
use super::context::{StepOutput, StepStatus};
use crate::id::{RunId, StepId};
use crate::incident::{Alert, Incident, Severity, Status};
use crate::playbook::{Playbook, Provenance, Step};
use crate::timeline::{self, Payload, RecordedIncident, RunStatus};

/// What [`super::run`] needs to continue a run.
#[derive(Clone, Debug)]
pub struct Resume {
    /// The run being continued.
    pub run_id: RunId,
    /// When it first started (`run.started_at` in templates).
    pub started_at: String,
    /// This attempt's number (the first run is attempt 1).
    pub attempt: u32,
    /// Steps reused from earlier attempts ([`reusable`]), with their recorded outputs.
    pub done: BTreeMap<StepId, StepOutput>,
    /// What `irctl resume` decided, for the `run_resumed` event.
    pub note: timeline::ResumeNote,
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
    pub run_id: RunId,
    /// Its timeline file.
    pub path: PathBuf,
    /// The playbook's name.
    pub playbook: String,
    /// The recorded provenance of the last attempt.
    pub provenance: Provenance,
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
    pub done: BTreeMap<StepId, StepOutput>,
    /// Steps that were started in some attempt (so running them again is a repeat).
    pub started: BTreeSet<StepId>,
    /// The timeline ended in a torn line.
    pub torn_tail: bool,
    /// The steps the run was started with, in order.
    pub steps: Vec<StepId>,
}

/// A step's output as its `step_finished` event recorded it.
fn recorded_output(e: &timeline::StepFinished) -> StepOutput {
    let mut out = StepOutput::empty(StepStatus::Succeeded);
    if let Some(c) = &e.output {
        out.exit_code = c.exit_code;
        out.http_status = c.http_status;
        out.stdout = c.stdout.clone();
        out.stderr = c.stderr.clone();
        out.body = c.body.clone().unwrap_or_default();
    }
    out.json = serde_json::from_str(&out.body).unwrap_or(Value::Null);
    out.duration_ms = e.duration_ms;
    out.attempts = e.attempts;
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
    let Some((start, started_at)) = tl.events.iter().find_map(|e| match &e.payload {
        Payload::RunStarted(p) => Some((p, &e.ts)),
        _ => None,
    }) else {
        anyhow::bail!("timeline `{}` has no `run_started` event", path.display());
    };
    let incident = incident_from_recorded(&start.recorded_incident())
        .with_context(|| format!("the incident recorded in `{}`", path.display()))?;
    let mut prior = Prior {
        run_id: RunId::from(run_id),
        path,
        playbook: start.playbook.clone(),
        provenance: start.provenance.clone(),
        incident,
        inputs: start.inputs.clone(),
        drill: start.drill,
        started_at: started_at.clone(),
        attempts: 0,
        ended: Ended::Unfinished,
        done: BTreeMap::new(),
        started: BTreeSet::new(),
        torn_tail: tl.torn_tail,
        steps: start.steps.clone(),
    };
    for e in &tl.events {
        match &e.payload {
            Payload::RunStarted(p) => prior.start_attempt(&p.provenance),
            Payload::RunResumed(p) => prior.start_attempt(&p.provenance),
            Payload::RunFinished(p) => {
                prior.ended = match p.status {
                    RunStatus::Succeeded => Ended::Succeeded,
                    RunStatus::Failed => Ended::Failed,
                    RunStatus::Cancelled => Ended::Cancelled,
                }
            }
            Payload::StepStarted(p) => {
                prior.started.insert(p.step.clone());
            }
            Payload::StepFinished(p) => {
                if p.status == StepStatus::Succeeded {
                    prior.done.insert(p.step.clone(), recorded_output(p));
                } else {
                    prior.done.remove(&p.step);
                }
            }
            _ => {}
        }
    }
    Ok(prior)
}

impl Prior {
    /// Whether the run took `playbook`'s `on_resolved` steps rather than
    /// its `steps`: a resumed resolution run goes on with the same list.
    pub fn ran_on_resolved(&self, playbook: &Playbook) -> bool {
        let ids = |steps: &[crate::playbook::Step]| {
            steps.iter().map(|s| s.id.clone()).collect::<Vec<_>>()
        };
        !playbook.on_resolved.is_empty()
            && self.steps == ids(&playbook.on_resolved)
            && self.steps != ids(&playbook.steps)
    }

    fn start_attempt(&mut self, provenance: &Provenance) {
        self.attempts += 1;
        self.ended = Ended::Unfinished;
        self.provenance = provenance.clone();
    }
}

/// Why the current playbook file is not the one the run used, naming both.
pub fn changed_playbook(prior: &Prior, playbook: &Playbook) -> Option<String> {
    let recorded = &prior.provenance.blob;
    let now = &playbook.provenance.blob;
    if recorded == now {
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
            recorded,
            prior.provenance.commit.as_deref(),
            &prior.provenance.path
        ),
        describe(
            now,
            playbook.provenance.commit.as_deref(),
            &playbook.provenance.path
        ),
    ))
}

/// The steps of `playbook` a resume reuses, with their recorded outputs: a
/// step is reused only if it succeeded and every one of its ancestors is
/// reused. Anything downstream of a step that runs again is stale (a
/// notification that reported the failure must report the fix), so it runs
/// again too.
pub fn reusable(prior: &Prior, playbook: &Playbook) -> BTreeMap<StepId, StepOutput> {
    let steps = &playbook.steps;
    // Kahn's order: every step after its needs, whatever the file order.
    let mut remaining: Vec<usize> = steps.iter().map(|s| s.needs.len()).collect();
    let mut dependents = vec![Vec::new(); steps.len()];
    for (i, s) in steps.iter().enumerate() {
        for &j in &s.needs {
            if let Some(d) = dependents.get_mut(j) {
                d.push(i);
            }
        }
    }
    let mut queue: Vec<usize> = (0..steps.len()).filter(|&i| remaining[i] == 0).collect();
    let mut reused = vec![false; steps.len()];
    while let Some(i) = queue.pop() {
        let s = &steps[i];
        reused[i] = prior.done.contains_key(&s.id)
            && s.needs
                .iter()
                .all(|&j| reused.get(j).copied().unwrap_or(false));
        for &d in &dependents[i] {
            remaining[d] -= 1;
            if remaining[d] == 0 {
                queue.push(d);
            }
        }
    }
    steps
        .iter()
        .zip(reused)
        .filter(|(_, r)| *r)
        .filter_map(|(s, _)| Some((s.id.clone(), prior.done.get(&s.id)?.clone())))
        .collect()
}

/// Steps marked `idempotent: false` that already started in an earlier
/// attempt and would run again (they are not in `reused`, see [`reusable`]):
/// running them twice needs a person's approval.
pub fn repeats_needing_approval<'a>(
    prior: &Prior,
    reused: &BTreeMap<StepId, StepOutput>,
    playbook: &'a Playbook,
) -> Vec<&'a Step> {
    playbook
        .steps
        .iter()
        .filter(|s| !s.idempotent && prior.started.contains(&s.id) && !reused.contains_key(&s.id))
        .collect()
}

/// What a resumed attempt reuses, runs again and runs with.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Steps still in the playbook that succeeded earlier, with their recorded outputs.
    pub done: BTreeMap<StepId, StepOutput>,
    /// The playbook's other steps, in playbook order: they run again.
    pub rerun: Vec<StepId>,
    /// The recorded inputs the playbook still declares, as `--input` would give them.
    pub inputs: Vec<(String, String)>,
    /// The attempt's bound: a resumed drill is still a drill, with the same `max_duration`.
    pub deadline: Option<std::time::Duration>,
}

impl Plan {
    /// What resuming `prior` with `playbook` (the file as it is now) reuses and runs.
    pub fn of(prior: &Prior, playbook: &Playbook) -> Plan {
        let done = reusable(prior, playbook);
        let rerun = playbook
            .steps
            .iter()
            .filter(|s| !done.contains_key(&s.id))
            .map(|s| s.id.clone())
            .collect();
        let inputs = prior
            .inputs
            .iter()
            .filter(|(k, v)| playbook.inputs.contains_key(*k) && !v.is_null())
            .map(|(k, v)| {
                let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                (k.clone(), text)
            })
            .collect();
        let deadline = if prior.drill {
            playbook.drill.as_ref().and_then(|d| d.max_duration)
        } else {
            None
        };
        Plan {
            done,
            rerun,
            inputs,
            deadline,
        }
    }

    /// The [`Resume`] of the engine's options for this plan, with what
    /// `irctl resume` decided in `note`.
    pub fn resume(&self, prior: &Prior, note: timeline::ResumeNote) -> Resume {
        Resume {
            run_id: prior.run_id.clone(),
            started_at: prior.started_at.clone(),
            attempt: prior.attempts + 1,
            done: self.done.clone(),
            note,
        }
    }
}

/// The `run_resumed` event.
pub(crate) fn event(
    r: &Resume,
    playbook: &Playbook,
    actor: &str,
    torn_tail_bytes: u64,
) -> timeline::RunResumed {
    timeline::RunResumed {
        attempt: r.attempt,
        playbook: playbook.name.clone(),
        provenance: playbook.provenance.clone(),
        actor: actor.to_string(),
        reused: r.done.keys().cloned().collect(),
        torn_tail_bytes: Some(torn_tail_bytes).filter(|&n| n > 0),
        note: r.note.clone(),
    }
}

/// Marks reused steps as succeeded in the scheduler's fates, reports and outputs.
pub(super) fn seed(
    r: &Resume,
    steps: &[Step],
    fates: &mut [Option<super::scheduler::Fate>],
    reports: &mut [StepReport],
    outputs: &mut serde_json::Map<String, Value>,
) {
    for (i, s) in steps.iter().enumerate() {
        if let Some(out) = r.done.get(&s.id) {
            fates[i] = Some(super::scheduler::Fate {
                status: StepStatus::Succeeded,
                failed: None,
                tolerated: None,
            });
            reports[i].status = StepStatus::Succeeded;
            reports[i].attempts = 0;
            reports[i].reason = Some("succeeded in an earlier attempt".into());
            outputs.insert(
                s.id.to_string(),
                serde_json::to_value(out).unwrap_or_default(),
            );
        }
    }
}

fn time(text: &Option<String>) -> Option<chrono::DateTime<chrono::Utc>> {
    text.as_deref()
        .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&chrono::Utc))
}

fn status(text: &str) -> Status {
    if text == "resolved" {
        Status::Resolved
    } else {
        Status::Firing
    }
}

/// Rebuilds the incident from the `incident` object `run_started` recorded
/// (the same object templates saw), so a resumed run sees the same incident.
fn incident_from_recorded(v: &RecordedIncident) -> anyhow::Result<Incident> {
    let id =
        v.id.clone()
            .ok_or_else(|| anyhow::anyhow!("the recorded incident has no `id`"))?;
    let alerts = v
        .alerts
        .iter()
        .map(|a| Alert {
            status: status(&a.status),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: time(&a.starts_at),
            ends_at: time(&a.ends_at),
            fingerprint: a.fingerprint.clone(),
            generator_url: a.generator_url.clone(),
            values: a.values.clone(),
            dashboard_url: a.dashboard_url.clone(),
            silence_url: a.silence_url.clone(),
        })
        .collect();
    Ok(Incident {
        id,
        title: v.title.clone(),
        severity: Severity::normalise(&v.severity),
        severity_raw: v.severity_raw.clone(),
        status: status(&v.status),
        acknowledged: false,
        source: v.source.clone(),
        labels: v.labels.clone(),
        annotations: v.annotations.clone(),
        started_at: time(&v.started_at),
        ended_at: time(&v.ended_at),
        fingerprint: v.fingerprint.clone(),
        url: v.url.clone(),
        alerts,
        raw: v.raw.clone(),
        ownership: crate::catalog::Ownership::from_template_values(&v.owner, &v.impacted)
            .map(std::sync::Arc::new),
    })
}
