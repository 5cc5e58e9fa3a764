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
    use FieldKind::{Expression, Shell, Template, Url};
    let id = &step.id.value;
    let mut f = Vec::new();
    // Every label is `steps.ID.` plus the field's path inside the step.
    let add = |f: &mut Vec<_>, path: &str, t, kind| {
        f.push(text_field(format!("steps.{id}.{path}"), t, kind));
    };
    if let Some(s) = &step.shell {
        add(&mut f, "shell", s, Shell);
    }
    if let Some(cmd) = &step.command {
        for (i, a) in cmd.iter().enumerate() {
            add(&mut f, &format!("command[{i}]"), a, Template);
        }
    }
    for (k, v) in &step.env {
        add(&mut f, &format!("env.{k}"), v, Template);
    }
    if let Some(cwd) = &step.cwd {
        add(&mut f, "cwd", cwd, Template);
    }
    if let Some(w) = &step.when {
        add(&mut f, "when", w, Expression);
    }
    if let Some(q) = &step.confirm {
        add(&mut f, "confirm", q, Template);
    }
    if let Some(h) = &step.http {
        add(&mut f, "http.url", &h.url, Url);
        for (k, v) in h.headers.iter() {
            add(&mut f, &format!("http.headers.{k}"), v, Template);
        }
        for (k, v) in h.query.iter() {
            add(&mut f, &format!("http.query.{k}"), v, Template);
        }
        if let Some(b) = &h.body {
            add(&mut f, "http.body", b, Template);
        }
        if let Some(j) = &h.json {
            push_json(&mut f, format!("steps.{id}.http.json"), j);
        }
    }
    if let Some(n) = &step.notify {
        if let Some(s) = &n.slack {
            add(&mut f, "notify.slack.webhook", &s.webhook, Url);
            add(&mut f, "notify.slack.text", &s.text, Template);
            if let Some(b) = &s.blocks {
                push_json(&mut f, format!("steps.{id}.notify.slack.blocks"), b);
            }
        }
        if let Some(t) = &n.teams {
            add(&mut f, "notify.teams.webhook", &t.webhook, Url);
            add(&mut f, "notify.teams.text", &t.text, Template);
            if let Some(title) = &t.title {
                add(&mut f, "notify.teams.title", title, Template);
            }
        }
        if let Some(p) = &n.pagerduty {
            add(
                &mut f,
                "notify.pagerduty.routing_key",
                &p.routing_key,
                Template,
            );
            for (name, t) in [
                ("dedup_key", &p.dedup_key),
                ("summary", &p.summary),
                ("severity", &p.severity),
                ("source", &p.source),
            ] {
                if let Some(t) = t {
                    add(&mut f, &format!("notify.pagerduty.{name}"), t, Template);
                }
            }
            if let Some(e) = &p.endpoint {
                add(&mut f, "notify.pagerduty.endpoint", e, Url);
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
            add(&mut f, "notify.webhook.url", &w.url, Url);
            for (k, v) in w.headers.iter() {
                add(&mut f, &format!("notify.webhook.headers.{k}"), v, Template);
            }
            if let Some(s) = &w.hmac_secret {
                add(&mut f, "notify.webhook.hmac_secret", s, Template);
            }
            if let Some(j) = &w.json {
                push_json(&mut f, format!("steps.{id}.notify.webhook.json"), j);
            }
        }
        if let Some(cn) = &n.console {
            add(&mut f, "notify.console.text", &cn.text, Template);
        }
        if let Some(t) = &n.text {
            add(&mut f, "notify.text", t, Template);
        }
        if let Some(t) = &n.title {
            add(&mut f, "notify.title", t, Template);
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
                let (kind, text) = match template::single_expression(s) {
                    Some(e) => (FieldKind::Expression, e),
                    None => (FieldKind::Template, s.as_str()),
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
