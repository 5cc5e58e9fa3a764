//! The template context a step sees, and the outputs steps leave behind.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde::Serialize;

use crate::incident::Incident;
use crate::playbook::Playbook;
use crate::playbook::model::InputType;
use crate::secret::Secret;
use crate::template::{self, Sink};

pub use crate::timeline::StepStatus;

/// What a step leaves for later steps (`steps.ID.*`).
#[derive(Clone, Debug, Serialize)]
pub struct StepOutput {
    /// Final status.
    pub status: StepStatus,
    /// Process exit code.
    pub exit_code: Option<i32>,
    /// Captured stdout (capped).
    pub stdout: String,
    /// Captured stderr (capped).
    pub stderr: String,
    /// HTTP status code.
    pub http_status: Option<u16>,
    /// HTTP response headers.
    pub headers: BTreeMap<String, String>,
    /// HTTP response body (capped).
    pub body: String,
    /// The body parsed as JSON, when it is JSON.
    pub json: serde_json::Value,
    /// Wall time of the last attempt.
    pub duration_ms: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Whether a drill simulated it.
    pub simulated: bool,
}

impl StepOutput {
    /// An output with nothing captured yet.
    pub fn empty(status: StepStatus) -> Self {
        StepOutput {
            status,
            exit_code: None,
            stdout: String::new(),
            stderr: String::new(),
            http_status: None,
            headers: BTreeMap::new(),
            body: String::new(),
            json: serde_json::Value::Null,
            duration_ms: 0,
            attempts: 0,
            simulated: false,
        }
    }
}

/// Metadata templates see as `run`.
#[derive(Clone, Debug, Serialize)]
pub struct RunMeta {
    /// The run id.
    pub id: crate::id::RunId,
    /// When it started.
    pub started_at: String,
    /// Whether this is a drill.
    pub drill: bool,
    /// Whether this is a dry run.
    pub dry_run: bool,
}

/// Everything needed to build a step's template context.
pub struct ContextBase {
    /// `incident`
    pub incident: serde_json::Value,
    /// `inputs`
    pub inputs: serde_json::Map<String, serde_json::Value>,
    /// `run`
    pub run: RunMeta,
    /// `playbook`
    pub playbook: serde_json::Value,
    /// Secret values by name.
    pub secrets: BTreeMap<String, Secret>,
    /// The run's clock, for the times a step sends (a PagerDuty event's `timestamp`).
    pub clock: crate::clock::Clock,
    /// The run's secrets as patterns, masked in what notifications send.
    pub redactor: crate::secret::Redactor,
    /// The template values that are the same for every step, converted on
    /// first use (start with `OnceLock::new()`).
    pub fixed: OnceLock<FixedValues>,
    /// The run's timeline hash so far (`run.timeline_hash`), read when a
    /// step renders; `None` where no timeline is written (a dry run).
    pub timeline_head: Option<TimelineHead>,
}

/// Reads the chain head of a run's timeline at the moment a step renders.
pub type TimelineHead = std::sync::Arc<dyn Fn() -> String + Send + Sync>;

/// `run.timeline_hash` where no timeline is written.
pub const NO_TIMELINE_HASH: &str = "(no timeline in a dry run)";

/// The `run` template object: the run's metadata and its timeline hash so far.
#[derive(Serialize)]
struct RunValue<'a> {
    #[serde(flatten)]
    meta: &'a RunMeta,
    timeline_hash: String,
}

/// The parts of a step's template context that do not change during a run,
/// converted to template values once instead of once per rendered field
/// (the incident carries its whole raw payload).
pub struct FixedValues {
    incident: minijinja::Value,
    /// `incident` once a resolution arrived while the run was in flight.
    resolved_incident: OnceLock<minijinja::Value>,
    inputs: minijinja::Value,
    playbook: minijinja::Value,
    /// `secrets` in a shell script: references to environment variables.
    secrets_in_shell: minijinja::Value,
    /// `secrets` anywhere else: the values.
    secrets: minijinja::Value,
}

/// The name of the environment variable that carries secret `name` into a process.
pub fn secret_env_name(name: &str) -> String {
    format!("IRCTL_SECRET_{name}")
}

impl ContextBase {
    /// The context for rendering into `sink`. In a shell script a secret
    /// renders as a reference to an environment variable, never its value,
    /// so it is not visible in `ps` or in the rendered command.
    pub fn value(
        &self,
        steps: &serde_json::Map<String, serde_json::Value>,
        sink: Sink,
    ) -> minijinja::Value {
        let fixed = self.fixed.get_or_init(|| self.convert_fixed());
        minijinja::context! {
            incident => fixed.resolved_incident.get().unwrap_or(&fixed.incident).clone(),
            inputs => fixed.inputs.clone(),
            // Nothing has run in a dry run: outputs are visible placeholders.
            steps => if self.run.dry_run { super::plan::unknown_steps() } else { crate::template::value(steps) },
            run => self.run_value(),
            playbook => fixed.playbook.clone(),
            secrets => if sink == Sink::Shell {
                fixed.secrets_in_shell.clone()
            } else {
                fixed.secrets.clone()
            },
        }
    }

    /// Steps not yet started see the incident resolved at `at` (RFC 3339):
    /// `incident.resolved` true, `incident.resolved_at` and `incident.status`
    /// set. `false` when they already did.
    pub fn resolve(&self, at: &str) -> bool {
        let fixed = self.fixed.get_or_init(|| self.convert_fixed());
        let mut incident = with_run_fields(&self.incident);
        if let Some(m) = incident.as_object_mut() {
            m.insert("resolved".into(), true.into());
            m.insert("resolved_at".into(), at.into());
            m.insert("status".into(), "resolved".into());
        }
        fixed
            .resolved_incident
            .set(crate::template::value(&incident))
            .is_ok()
    }

    /// Whether [`ContextBase::resolve`] was called.
    pub fn is_resolved(&self) -> bool {
        self.fixed
            .get()
            .is_some_and(|f| f.resolved_incident.get().is_some())
    }

    /// The chain head now, as people see it (`sha256:…`).
    pub fn timeline_hash(&self) -> String {
        match &self.timeline_head {
            Some(head) => head(),
            None => NO_TIMELINE_HASH.to_string(),
        }
    }

    /// `run`, built per render: the timeline hash moves as the run goes on.
    fn run_value(&self) -> minijinja::Value {
        crate::template::value(&RunValue {
            meta: &self.run,
            timeline_hash: self.timeline_hash(),
        })
    }

    fn convert_fixed(&self) -> FixedValues {
        let secrets = |in_shell: bool| {
            let map: BTreeMap<String, minijinja::Value> = self
                .secrets
                .iter()
                .map(|(k, v)| {
                    let value = if in_shell {
                        template::shell_secret(&secret_env_name(k))
                    } else {
                        minijinja::Value::from(v.expose())
                    };
                    (k.clone(), value)
                })
                .collect();
            minijinja::Value::from(map)
        };
        FixedValues {
            incident: crate::template::value(with_run_fields(&self.incident)),
            resolved_incident: OnceLock::new(),
            inputs: crate::template::value(&self.inputs),
            playbook: crate::template::value(&self.playbook),
            secrets_in_shell: secrets(true),
            secrets: secrets(false),
        }
    }
}

/// `incident` with the fields a run adds ([`crate::incident::RUN_FIELDS`]),
/// as the payload says them: a resolved payload is resolved when it ended.
fn with_run_fields(incident: &serde_json::Value) -> serde_json::Value {
    let mut incident = incident.clone();
    if let Some(m) = incident.as_object_mut() {
        let resolved = m.get("status").and_then(|s| s.as_str()) == Some("resolved");
        let at = if resolved {
            m.get("ended_at").cloned().unwrap_or_default()
        } else {
            serde_json::Value::Null
        };
        m.entry("resolved").or_insert(resolved.into());
        m.entry("resolved_at").or_insert(at);
    }
    incident
}

/// The `playbook` template object.
pub fn playbook_value(p: &Playbook) -> serde_json::Value {
    serde_json::json!({
        "name": p.name,
        "title": p.title,
        "owner": p.owner,
        "commit": p.provenance.commit,
        "path": p.provenance.path,
        "blob": p.provenance.blob,
        "repo": p.provenance.repo,
    })
}

/// Resolves inputs: `--input` values, else rendered defaults; checks types and required.
pub fn resolve_inputs(
    playbook: &Playbook,
    incident: &Incident,
    run: &RunMeta,
    given: &[(String, String)],
    drill_inputs: Option<&indexmap::IndexMap<String, serde_json::Value>>,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    for (name, _) in given {
        if !playbook.inputs.contains_key(name) {
            let help =
                crate::diagnostic::did_you_mean(name, playbook.inputs.keys().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
            anyhow::bail!("playbook `{}` has no input `{name}`{help}", playbook.name);
        }
    }
    let ctx = minijinja::context! {
        incident => crate::template::value(incident.to_template_value()),
        run => crate::template::value(run),
        playbook => crate::template::value(playbook_value(playbook)),
    };
    let mut out = serde_json::Map::new();
    for (name, spec) in &playbook.inputs {
        let given_value = given
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone());
        let value = if let Some(v) = given_value {
            coerce(name, spec.kind, serde_json::Value::String(v))?
        } else if let Some(v) = drill_inputs.and_then(|d| d.get(name)) {
            coerce(name, spec.kind, v.clone())?
        } else if let Some(default) = &spec.default {
            match &default.value {
                serde_json::Value::String(s) => {
                    let rendered = template::render(s, Sink::Text, &ctx).map_err(|e| {
                        anyhow::anyhow!("input `{name}`: default `{s}` did not render: {e}")
                    })?;
                    coerce(name, spec.kind, serde_json::Value::String(rendered))?
                }
                other => coerce(name, spec.kind, other.clone())?,
            }
        } else if spec.required {
            anyhow::bail!("input `{name}` is required: pass `--input {name}=VALUE`");
        } else {
            serde_json::Value::Null
        };
        out.insert(name.clone(), value);
    }
    Ok(out)
}

fn coerce(
    name: &str,
    kind: InputType,
    value: serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    use serde_json::Value as J;
    let text = match &value {
        J::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    Ok(match kind {
        InputType::String => match value {
            J::String(s) => J::String(s),
            other => J::String(other.to_string()),
        },
        InputType::Integer => J::from(
            text.parse::<i64>()
                .map_err(|_| anyhow::anyhow!("input `{name}` must be an integer, got `{text}`"))?,
        ),
        InputType::Number => {
            let n = text
                .parse::<f64>()
                .map_err(|_| anyhow::anyhow!("input `{name}` must be a number, got `{text}`"))?;
            serde_json::Number::from_f64(n)
                .map(J::Number)
                .unwrap_or(J::Null)
        }
        InputType::Boolean => J::Bool(match text.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => true,
            "false" | "no" | "0" | "off" => false,
            _ => anyhow::bail!("input `{name}` must be true or false, got `{text}`"),
        }),
    })
}
