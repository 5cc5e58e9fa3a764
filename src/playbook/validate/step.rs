//! One list of steps (`steps` or `on_resolved`) checked as a DAG of its
//! own: ids, `needs`, each step's action, templates, sinks and warnings,
//! compiled into the [`Step`]s a run executes.

use super::*;

use crate::diagnostic::did_you_mean;
use crate::playbook::model::RawStep;
use crate::playbook::{DEFAULT_STEP_TIMEOUT, Process, Program, Step, StepAction, StepId};
use crate::template::{ROOTS, TEAM_MESSAGE_ROOTS};

/// What every step of a playbook shares.
pub(super) struct StepDefaults<'a> {
    pub(super) secrets: &'a [&'a str],
    pub(super) inputs: &'a [&'a str],
    pub(super) allowed_hosts: &'a [Spanned<String>],
    pub(super) timeout: Option<std::time::Duration>,
    pub(super) retry: Option<crate::playbook::RetryPolicy>,
}

/// Checks one list of steps (`steps` or `on_resolved`) as a DAG of its own.
pub(super) fn check_steps(
    c: &mut Checker<'_>,
    steps_raw: &[RawStep],
    defaults: &StepDefaults<'_>,
) -> Vec<Step> {
    let StepDefaults {
        secrets,
        inputs,
        allowed_hosts,
        timeout: default_timeout,
        retry: default_retry,
    } = *defaults;
    // Step ids first, so references can be resolved in any order.
    let mut ids: HashMap<&str, usize> = HashMap::new();
    for (i, step) in steps_raw.iter().enumerate() {
        let id = step.id.value.as_str();
        if !is_identifier(id) {
            c.error(
                step.id.pos,
                "invalid-step-id",
                format!("step id `{id}` is not an identifier"),
            )
            .with_width_mut(id.len())
            .help = Some(format!(
                "use letters, digits and `_` so templates can say `steps.{}`",
                id.replace(['-', ' ', '.'], "_")
            ));
        }
        if ids.contains_key(id) {
            c.error(
                step.id.pos,
                "duplicate-step-id",
                format!("step id `{id}` is used more than once"),
            )
            .with_width_mut(id.len());
        } else {
            ids.insert(id, i);
        }
    }

    // Resolve needs.
    let mut needs: Vec<Vec<usize>> = vec![Vec::new(); steps_raw.len()];
    for (i, step) in steps_raw.iter().enumerate() {
        let mut seen = HashSet::new();
        for need in &step.needs {
            let width = need.value.len();
            if need.value == step.id.value {
                c.error(
                    need.pos,
                    "self-need",
                    format!("step `{}` needs itself", step.id.value),
                )
                .with_width_mut(width);
                continue;
            }
            match ids.get(need.value.as_str()) {
                Some(&j) => {
                    if seen.insert(j) {
                        needs[i].push(j);
                    }
                }
                None => {
                    let help = did_you_mean(&need.value, ids.keys().copied());
                    c.error(
                        need.pos,
                        "unknown-need",
                        format!(
                            "step `{}` needs `{}`, which does not exist",
                            step.id.value, need.value
                        ),
                    )
                    .with_width_mut(width)
                    .help = help;
                }
            }
        }
    }
    report_cycles(c, steps_raw, &needs);

    let ancestry = Ancestry::new(&needs);
    let mut steps = Vec::new();
    for (i, step) in steps_raw.iter().enumerate() {
        let scope = StepScope {
            ids: &ids,
            secrets,
            inputs,
            current: Some(i),
            current_id: &step.id.value,
            ancestry: Some(&ancestry),
        };
        check_action(c, step);
        c.step_reads.clear();
        c.reads_all_steps = false;
        for field in step_fields(step) {
            // A team's message also sees the team it is for.
            let roots: &[&str] = if field.label.ends_with(".notify.text")
                || field.label.ends_with(".notify.title")
            {
                TEAM_MESSAGE_ROOTS
            } else {
                ROOTS
            };
            c.check_field(&field, roots, &scope);
        }
        if let Some(argv) = &step.command {
            c.check_argv(&step.id.value, argv);
        }
        c.check_sinks(step, allowed_hosts);
        let reads = if c.reads_all_steps {
            None
        } else {
            let mut r: Vec<usize> = c
                .step_reads
                .iter()
                .filter_map(|n| ids.get(n.as_str()).copied())
                .collect();
            r.sort_unstable();
            Some(r)
        };
        if let Some(when) = &step.when
            && when.value.trim().eq_ignore_ascii_case("false")
        {
            c.warning(
                when.pos,
                "unreachable-step",
                format!("step `{}` never runs: its `when` is `false`", step.id.value),
            );
        }
        if step.report && step.notify.is_some() {
            let pos = c
                .index
                .locate_key(step.id.pos, "report")
                .unwrap_or(step.id.pos);
            c.warning(
                pos,
                "report-without-output",
                format!(
                    "step `{}` is a notification: it has no output for the postmortem to quote",
                    step.id.value
                ),
            )
            .help = Some("mark the step whose output is the finding (`shell`, `command` or `http`) with `report: true`".into());
        }
        if step.http.as_ref().is_some_and(|h| h.insecure) {
            let pos = c
                .index
                .locate_key(step.id.pos, "insecure")
                .unwrap_or(step.id.pos);
            c.warning(
                pos,
                "insecure-tls",
                format!(
                    "step `{}` disables TLS certificate verification",
                    step.id.value
                ),
            )
            .help = Some("remove `insecure: true` or trust the server's CA on this machine".into());
        }
        let timeout = c
            .duration(&format!("steps.{}.timeout", step.id.value), &step.timeout)
            .or(default_timeout)
            .unwrap_or(DEFAULT_STEP_TIMEOUT);
        let retry = match &step.retry {
            Some(r) => c.retry(&format!("steps.{}.retry", step.id.value), r),
            None => default_retry.unwrap_or_default(),
        };
        steps.push(Step {
            id: StepId::from(step.id.value.as_str()),
            action: step_action(step, allowed_hosts),
            needs: needs[i].clone(),
            reads,
            trigger: step.trigger.value,
            when: step.when.as_ref().map(|w| w.value.clone()),
            confirm: step.confirm.as_ref().map(|q| q.value.clone()),
            confirm_timeout: approvals::confirm_timeout(c, step),
            timeout,
            retry,
            continue_on_error: step.continue_on_error,
            simulate_in_drill: step.simulate_in_drill,
            idempotent: step.idempotent,
            report: step.report,
        });
    }

    steps
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The step's one action. A step written with none or several is already an
/// error, and its playbook never leaves [`check_file`]; it gets the first
/// written (or an empty script) so the rest of the file is still checked.
fn step_action(step: &RawStep, allowed_hosts: &[Spanned<String>]) -> StepAction {
    let text = |t: &crate::playbook::model::Text| t.value.clone();
    if step.shell.is_none() && step.command.is_none() {
        if let Some(h) = &step.http {
            let mut h = h.clone();
            h.allowed_hosts.extend(allowed_hosts.iter().cloned());
            return StepAction::Http(Box::new(h));
        }
        if let Some(n) = &step.notify {
            return StepAction::Notify(Box::new(n.clone()));
        }
    }
    let program = match (&step.shell, &step.command) {
        (None, Some(argv)) => Program::Command(argv.iter().map(text).collect()),
        (script, _) => Program::Shell(script.as_ref().map(text).unwrap_or_default()),
    };
    StepAction::Process(Process {
        program,
        env: step.env.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        cwd: step.cwd.as_ref().map(text),
        interpreter: step.shell_interpreter.clone(),
    })
}
