//! Every templated value of a step, with its position, for template checks.

use super::*;

use crate::playbook::model::{RawStep, Text};
use crate::template::{self};
use crate::yaml::{Pos, Spanned};

pub(super) fn text_field<'a>(label: String, t: &'a Text, kind: FieldKind) -> Field<'a> {
    Field {
        label,
        text: &t.value,
        pos: t.pos,
        kind,
    }
}

/// Every templated value of a step, with its label and position.
pub(super) fn step_fields(step: &RawStep) -> Vec<Field<'_>> {
    let id = &step.id.value;
    let mut f = Vec::new();
    if let Some(s) = &step.shell {
        f.push(text_field(
            format!("steps.{id}.shell"),
            s,
            FieldKind::Template,
        ));
    }
    if let Some(cmd) = &step.command {
        for (i, a) in cmd.iter().enumerate() {
            f.push(text_field(
                format!("steps.{id}.command[{i}]"),
                a,
                FieldKind::Template,
            ));
        }
    }
    for (k, v) in &step.env {
        f.push(text_field(
            format!("steps.{id}.env.{k}"),
            v,
            FieldKind::Template,
        ));
    }
    if let Some(cwd) = &step.cwd {
        f.push(text_field(
            format!("steps.{id}.cwd"),
            cwd,
            FieldKind::Template,
        ));
    }
    if let Some(w) = &step.when {
        f.push(text_field(
            format!("steps.{id}.when"),
            w,
            FieldKind::Expression,
        ));
    }
    if let Some(q) = &step.confirm {
        f.push(text_field(
            format!("steps.{id}.confirm"),
            q,
            FieldKind::Template,
        ));
    }
    if let Some(h) = &step.http {
        f.push(text_field(
            format!("steps.{id}.http.url"),
            &h.url,
            FieldKind::Url,
        ));
        for (k, v) in h.headers.iter() {
            f.push(text_field(
                format!("steps.{id}.http.headers.{k}"),
                v,
                FieldKind::Template,
            ));
        }
        for (k, v) in h.query.iter() {
            f.push(text_field(
                format!("steps.{id}.http.query.{k}"),
                v,
                FieldKind::Template,
            ));
        }
        if let Some(b) = &h.body {
            f.push(text_field(
                format!("steps.{id}.http.body"),
                b,
                FieldKind::Template,
            ));
        }
        if let Some(j) = &h.json {
            push_json(&mut f, format!("steps.{id}.http.json"), j);
        }
    }
    if let Some(n) = &step.notify {
        if let Some(s) = &n.slack {
            f.push(text_field(
                format!("steps.{id}.notify.slack.webhook"),
                &s.webhook,
                FieldKind::Url,
            ));
            f.push(text_field(
                format!("steps.{id}.notify.slack.text"),
                &s.text,
                FieldKind::Template,
            ));
            if let Some(b) = &s.blocks {
                push_json(&mut f, format!("steps.{id}.notify.slack.blocks"), b);
            }
        }
        if let Some(t) = &n.teams {
            f.push(text_field(
                format!("steps.{id}.notify.teams.webhook"),
                &t.webhook,
                FieldKind::Url,
            ));
            f.push(text_field(
                format!("steps.{id}.notify.teams.text"),
                &t.text,
                FieldKind::Template,
            ));
            if let Some(title) = &t.title {
                f.push(text_field(
                    format!("steps.{id}.notify.teams.title"),
                    title,
                    FieldKind::Template,
                ));
            }
        }
        if let Some(p) = &n.pagerduty {
            f.push(text_field(
                format!("steps.{id}.notify.pagerduty.routing_key"),
                &p.routing_key,
                FieldKind::Template,
            ));
            for (name, t) in [
                ("dedup_key", &p.dedup_key),
                ("summary", &p.summary),
                ("severity", &p.severity),
                ("source", &p.source),
            ] {
                if let Some(t) = t {
                    f.push(text_field(
                        format!("steps.{id}.notify.pagerduty.{name}"),
                        t,
                        FieldKind::Template,
                    ));
                }
            }
            if let Some(e) = &p.endpoint {
                f.push(text_field(
                    format!("steps.{id}.notify.pagerduty.endpoint"),
                    e,
                    FieldKind::Url,
                ));
            }
            if let Some(d) = &p.custom_details {
                push_json(
                    &mut f,
                    format!("steps.{id}.notify.pagerduty.custom_details"),
                    d,
                );
            }
        }
        if let Some(w) = &n.webhook {
            f.push(text_field(
                format!("steps.{id}.notify.webhook.url"),
                &w.url,
                FieldKind::Url,
            ));
            for (k, v) in w.headers.iter() {
                f.push(text_field(
                    format!("steps.{id}.notify.webhook.headers.{k}"),
                    v,
                    FieldKind::Template,
                ));
            }
            if let Some(s) = &w.hmac_secret {
                f.push(text_field(
                    format!("steps.{id}.notify.webhook.hmac_secret"),
                    s,
                    FieldKind::Template,
                ));
            }
            if let Some(j) = &w.json {
                push_json(&mut f, format!("steps.{id}.notify.webhook.json"), j);
            }
        }
        if let Some(cn) = &n.console {
            f.push(text_field(
                format!("steps.{id}.notify.console.text"),
                &cn.text,
                FieldKind::Template,
            ));
        }
    }
    f
}

pub(super) fn push_json<'a>(
    out: &mut Vec<Field<'a>>,
    label: String,
    v: &'a Spanned<serde_json::Value>,
) {
    fn walk<'a>(out: &mut Vec<Field<'a>>, label: &str, pos: Pos, v: &'a serde_json::Value) {
        match v {
            serde_json::Value::String(s) => {
                let kind = if template::single_expression(s).is_some() {
                    FieldKind::Expression
                } else {
                    FieldKind::Template
                };
                let text = match (kind, template::single_expression(s)) {
                    (FieldKind::Expression, Some(e)) => e,
                    _ => s.as_str(),
                };
                out.push(Field {
                    label: label.to_string(),
                    text,
                    pos,
                    kind,
                });
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(out, label, pos, i)),
            serde_json::Value::Object(map) => map.values().for_each(|i| walk(out, label, pos, i)),
            _ => {}
        }
    }
    walk(out, &label, v.pos, &v.value);
}
