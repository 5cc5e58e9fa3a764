//! The `drill` section: schedule, synthetic incident, inputs, notify overrides.

use super::*;
use std::collections::HashMap;

use crate::playbook::Drill;
use crate::playbook::model::RawPlaybook;

pub(super) fn check_drill(c: &mut Checker<'_>, raw: &RawPlaybook) -> Option<Drill> {
    let Some(d) = &raw.drill else {
        c.warning(
            raw.name.pos,
            "no-drill",
            format!("playbook `{}` has no `drill` section", raw.name.value),
        )
        .with_width_mut(raw.name.value.len())
        .help = Some("add `drill:` with a synthetic `incident` so the playbook is exercised before a real outage".into());
        return None;
    };
    if let Some(s) = &d.schedule
        && let Err(e) = crate::schedule::parse(&s.value)
    {
        c.error(
            s.pos,
            "invalid-cron",
            format!("invalid drill schedule `{}`: {e}", s.value),
        )
        .with_width_mut(s.value.len())
        .help = Some(
            "use 5 fields: minute hour day-of-month month day-of-week, e.g. `0 10 * * MON`".into(),
        );
    }
    // Drills never prompt, so a real action behind a question fails every drill.
    for step in raw.steps.iter().filter(|s| !s.simulate_in_drill) {
        if let Some(q) = &step.confirm {
            c.warning(
                q.pos,
                "drill-needs-confirmation",
                format!(
                    "step `{}` asks for confirmation, so the drill fails: drills run unattended and never approve",
                    step.id.value
                ),
            )
            .help = Some("add `simulate_in_drill: true` so drills record the action instead of running it".into());
        }
    }
    let max_duration = c.duration("drill.max_duration", &d.max_duration);
    let incident = match crate::incident::from_value(d.incident.value.clone(), c.file) {
        Ok(incident) => Some(incident),
        Err(e) => {
            c.error(
                d.incident.pos,
                "invalid-drill-incident",
                format!("drill incident: {e}"),
            );
            None
        }
    };
    for name in d.inputs.keys() {
        if !raw.inputs.contains_key(name) {
            let pos = c.index.key_path("drill", &["inputs", name]);
            let declared = raw.inputs.keys().map(String::as_str);
            c.unknown_input(pos, name.len(), "drill input", name, declared);
        }
    }
    Some(Drill {
        schedule: d.schedule.as_ref().map(|s| s.value.clone()),
        incident: incident?,
        max_duration,
        inputs: d.inputs.clone(),
        notify: d.notify.clone(),
        incident_pos: d.incident.pos,
    })
}

/// Checks `drill.notify` overrides like step fields: template syntax, declared
/// secrets and inputs, and literal URLs. Runs before the unused-secret check
/// so a secret used only by a drill override counts as used.
pub(super) fn check_drill_notify(
    c: &mut Checker<'_>,
    raw: &RawPlaybook,
    secrets: &[&str],
    inputs: &[&str],
) {
    let Some(notify) = raw.drill.as_ref().and_then(|d| d.notify.as_ref()) else {
        return;
    };
    let scope = StepScope {
        ids: &HashMap::new(),
        secrets,
        inputs,
        current: None,
        current_id: "",
        ancestry: None,
    };
    let fields = [
        ("slack", &notify.slack, FieldKind::Url),
        ("teams", &notify.teams, FieldKind::Url),
        ("webhook", &notify.webhook, FieldKind::Url),
        ("pagerduty", &notify.pagerduty, FieldKind::Template),
    ];
    for (name, text, kind) in fields {
        if let Some(t) = text {
            let field = text_field(format!("drill.notify.{name}"), t, kind);
            c.check_field(
                &field,
                &["incident", "inputs", "run", "playbook", "secrets"],
                &scope,
            );
        }
    }
}
