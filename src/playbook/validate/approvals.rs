//! Unattended approvals: the playbook's `approvals.notify` (a notification
//! shaped like a `notify` step's, checked the same way) and each step's
//! `confirm_timeout`.

use super::*;

use crate::playbook::DEFAULT_CONFIRM_TIMEOUT;
use crate::playbook::model::{RawNotify, RawPlaybook, Trigger};

/// The approval notification's templates see the run, not any step's output.
const APPROVAL_ROOTS: &[&str] = &["incident", "inputs", "secrets", "run", "playbook"];

/// Checks `approvals.notify` like a `notify` step's, and hands it back.
pub(super) fn check_approvals(
    c: &mut Checker<'_>,
    raw: &RawPlaybook,
    secrets: &[&str],
    inputs: &[&str],
) -> Option<RawNotify> {
    let notify = &raw.approvals.as_ref()?.notify;
    let pos = c.index.key_path("approvals", &["notify"]);
    let targets = [
        notify.slack.is_some(),
        notify.teams.is_some(),
        notify.pagerduty.is_some(),
        notify.webhook.is_some(),
        notify.console.is_some(),
    ]
    .into_iter()
    .filter(|t| *t)
    .count();
    if targets != 1 {
        c.error(
            pos,
            "schema",
            format!("`approvals.notify` needs exactly one target, found {targets}"),
        )
        .help = Some("one of `slack`, `teams`, `pagerduty`, `webhook` or `console`".into());
    }
    // The same fields a `notify` step has, checked by the same code.
    let step = RawStep {
        id: Spanned {
            value: "approvals".into(),
            pos,
        },
        name: None,
        shell: None,
        shell_interpreter: None,
        command: None,
        env: Default::default(),
        cwd: None,
        http: None,
        notify: Some(notify.clone()),
        needs: Vec::new(),
        when: None,
        trigger: Spanned {
            value: Trigger::OnSuccess,
            pos,
        },
        timeout: None,
        retry: None,
        confirm: None,
        confirm_timeout: None,
        continue_on_error: false,
        simulate_in_drill: false,
        idempotent: true,
        report: false,
    };
    let ids = HashMap::new();
    let scope = StepScope {
        ids: &ids,
        secrets,
        inputs,
        current: None,
        current_id: "approvals",
        ancestry: None,
    };
    for mut field in step_fields(&step) {
        field.label = field.label.replacen("steps.approvals.", "approvals.", 1);
        c.check_field(&field, APPROVAL_ROOTS, &scope);
    }
    Some(notify.clone())
}

/// A step's `confirm_timeout`: a duration above zero, on a step that asks.
pub(super) fn confirm_timeout(c: &mut Checker<'_>, step: &RawStep) -> std::time::Duration {
    let id = &step.id.value;
    let Some(written) = &step.confirm_timeout else {
        return DEFAULT_CONFIRM_TIMEOUT;
    };
    if step.confirm.is_none() {
        c.warning(
            written.pos,
            "confirm-timeout-without-confirm",
            format!("step `{id}` has a `confirm_timeout` but no `confirm` question"),
        )
        .help = Some("add a `confirm` question, or remove `confirm_timeout`".into());
    }
    match c.duration(
        &format!("steps.{id}.confirm_timeout"),
        &step.confirm_timeout,
    ) {
        Some(d) if d.is_zero() => {
            c.error(
                written.pos,
                "invalid-duration",
                format!("`steps.{id}.confirm_timeout` must be longer than zero"),
            )
            .help = Some("an approval nobody has time to give always declines; try `30m`".into());
            DEFAULT_CONFIRM_TIMEOUT
        }
        Some(d) => d,
        None => DEFAULT_CONFIRM_TIMEOUT,
    }
}
