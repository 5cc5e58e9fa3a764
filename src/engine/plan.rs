//! `--dry-run`: the plan of a run — DAG levels and every step's rendered
//! action — without executing anything.
//!
//! No step has run, so every `steps.…` a template reads is unknown: it
//! renders as a visible placeholder naming what it stands for
//! (`<steps.lookup.json.owner>`), however deep the path, so a valid
//! playbook always has a plan.

use std::collections::BTreeMap;
use std::sync::Arc;

use minijinja::value::{Enumerator, Object, ObjectRepr, Value};
use serde::Serialize;

use super::context::{self, ContextBase, RunMeta};
use crate::id::StepId;
use crate::incident::Incident;
use crate::playbook::Playbook;
use crate::secret::{Redactor, Secret};

/// One step in the plan.
#[derive(Clone, Debug, Serialize)]
pub struct PlannedStep {
    /// Step id.
    pub id: StepId,
    /// 0 for steps without needs; otherwise one more than the deepest need.
    pub level: usize,
    /// Its needs.
    pub needs: Vec<StepId>,
    /// Its trigger.
    pub trigger: &'static str,
    /// Its `when`, unevaluated.
    pub when: Option<String>,
    /// Confirmation question, rendered.
    pub confirm: Option<String>,
    /// The rendered action (secrets redacted), or why it does not render.
    pub action: Result<super::Action, String>,
}

/// The level of each step: the longest `needs` path leading to it. One
/// depth-first pass over the DAG (each step and each need visited once),
/// whatever order the file declares the steps in: settling the levels in
/// rounds over the file took a round per step for a chain declared last
/// step first, quadratic in the steps.
pub fn levels(playbook: &Playbook) -> Vec<usize> {
    const UNSET: usize = usize::MAX;
    let steps = &playbook.steps;
    let mut level = vec![UNSET; steps.len()];
    let mut on_path = vec![false; steps.len()];
    // (step, index of its next need to visit): an explicit stack, so a
    // long chain cannot overflow the thread's stack.
    let mut path: Vec<(usize, usize)> = Vec::new();
    for root in 0..steps.len() {
        if level[root] != UNSET {
            continue;
        }
        on_path[root] = true;
        path.push((root, 0));
        while let Some(top) = path.last_mut() {
            let i = top.0;
            match steps[i].needs.get(top.1) {
                Some(&j) => {
                    top.1 += 1;
                    // A need already on the path would be a cycle, which
                    // validation rules out; it is not followed.
                    if level[j] == UNSET && !on_path[j] {
                        on_path[j] = true;
                        path.push((j, 0));
                    }
                }
                None => {
                    level[i] = steps[i]
                        .needs
                        .iter()
                        .filter(|&&j| level[j] != UNSET)
                        .map(|&j| level[j] + 1)
                        .max()
                        .unwrap_or(0);
                    on_path[i] = false;
                    path.pop();
                }
            }
        }
    }
    level
}

/// Builds the plan as if the run started now by `clock`; fails only on
/// input problems (bad `--input`).
pub fn plan(
    playbook: &Playbook,
    incident: &Incident,
    given_inputs: &[(String, String)],
    secrets: &BTreeMap<String, Secret>,
    drill: bool,
    clock: crate::clock::Clock,
) -> anyhow::Result<Vec<PlannedStep>> {
    let meta = RunMeta {
        id: "dry-run".into(),
        started_at: crate::timeline::stamp(clock.now()),
        drill,
        dry_run: true,
    };
    let drill_inputs = if drill {
        playbook.drill.as_ref().map(|d| &d.inputs)
    } else {
        None
    };
    let inputs = context::resolve_inputs(playbook, incident, &meta, given_inputs, drill_inputs)?;
    let mut all_secrets = secrets.clone();
    for name in &playbook.secrets {
        all_secrets
            .entry(name.clone())
            .or_insert_with(|| Secret::new(format!("<secret {name}>")));
    }
    let credentials = incident.credentials();
    let redactor = Redactor::new(secrets.values().chain(&credentials));
    let base = ContextBase {
        incident: incident.to_template_value(),
        inputs,
        run: meta,
        playbook: context::playbook_value(playbook),
        secrets: all_secrets,
        clock,
        redactor: redactor.clone(),
        fixed: std::sync::OnceLock::new(),
        timeline_head: None,
    };
    let levels = levels(playbook);
    let mut out: Vec<PlannedStep> = playbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let prepared = super::render::prepare(s, &base, &serde_json::Map::new(), drill);
            let (action, confirm) = match prepared {
                Ok(p) => (
                    Ok(p.action.redacted(&redactor)),
                    p.confirm.map(|c| redactor.redact(&c)),
                ),
                Err(e) => (Err(redactor.redact(&e.to_string())), None),
            };
            PlannedStep {
                id: s.id.clone(),
                level: levels[i],
                needs: s
                    .needs
                    .iter()
                    .map(|&j| playbook.steps[j].id.clone())
                    .collect(),
                trigger: s.trigger.as_str(),
                when: s.when.as_ref().map(|w| w.trim().to_string()),
                confirm,
                action,
            }
        })
        .collect();
    out.sort_by_key(|p| p.level);
    Ok(out)
}

/// A value a dry run cannot know (a step's output): it renders as
/// `<PATH>`, and any attribute or item of it is another unknown one level
/// deeper. Looping over it loops zero times; in a JSON body it is the
/// placeholder string.
#[derive(Debug)]
struct Unknown(String);

impl Object for Unknown {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let path = match key.as_str() {
            Some(name) => format!("{}.{name}", self.0),
            None => format!("{}[{key}]", self.0),
        };
        Some(Value::from_object(Unknown(path)))
    }

    fn enumerate(self: &Arc<Self>) -> Enumerator {
        Enumerator::Empty
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

/// The `steps` object of a dry run: every output is [`Unknown`].
pub(crate) fn unknown_steps() -> Value {
    Value::from_object(Unknown("steps".into()))
}
