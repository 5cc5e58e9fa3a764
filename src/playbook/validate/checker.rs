//! The checker's shared reporting and template-field analysis.

use super::*;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::diagnostic::{Diagnostic, backticked, did_you_mean};
use crate::playbook::RetryPolicy;
use crate::playbook::model::RawRetry;
use crate::template::{self};
use crate::yaml::{Pos, Spanned};

impl<'a> Checker<'a> {
    /// Records `d` and hands it back so callers can add help or a width.
    fn push(&mut self, d: Diagnostic) -> &mut Diagnostic {
        self.diags.push(d);
        let last = self.diags.len() - 1;
        &mut self.diags[last]
    }

    pub(super) fn error(
        &mut self,
        pos: Pos,
        code: &'static str,
        msg: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Diagnostic::error(self.file, pos, code, msg))
    }

    pub(super) fn warning(
        &mut self,
        pos: Pos,
        code: &'static str,
        msg: impl Into<String>,
    ) -> &mut Diagnostic {
        self.push(Diagnostic::warning(self.file, pos, code, msg))
    }

    pub(super) fn duration(
        &mut self,
        field: &str,
        value: &Option<Spanned<String>>,
    ) -> Option<Duration> {
        let v = value.as_ref()?;
        match crate::duration::parse(&v.value) {
            Ok(d) => Some(d),
            Err(e) => {
                let width = v.value.len();
                self.error(v.pos, "invalid-duration", format!("`{field}`: {e}"))
                    .with_width_mut(width);
                None
            }
        }
    }

    pub(super) fn retry(&mut self, field: &str, retry: &RawRetry) -> RetryPolicy {
        let mut policy = RetryPolicy {
            attempts: retry.attempts.value,
            ..RetryPolicy::default()
        };
        if !(1..=100).contains(&retry.attempts.value) {
            self.error(
                retry.attempts.pos,
                "schema",
                format!(
                    "`{field}.attempts` must be between 1 and 100, found {}",
                    retry.attempts.value
                ),
            );
        }
        if let Some(d) = self.duration(&format!("{field}.backoff"), &retry.backoff) {
            policy.backoff = d;
        }
        if let Some(d) = self.duration(&format!("{field}.max_backoff"), &retry.max_backoff) {
            policy.max_backoff = d;
        }
        if policy.max_backoff < policy.backoff {
            policy.max_backoff = policy.backoff;
        }
        policy
    }

    pub(super) fn syntax(&mut self, field: &Field<'_>, err: template::SyntaxError) {
        let pos = self.index.scalar_line(field.pos, err.line);
        let (code, what) = match field.kind {
            FieldKind::Expression => ("invalid-expression", "expression"),
            _ => ("template-syntax", "template"),
        };
        self.error(
            pos,
            code,
            format!("invalid {what} in `{}`: {}", field.label, err.message),
        );
    }

    /// Checks the variables a field reads against what it can see.
    pub(super) fn refs(
        &mut self,
        field: &Field<'_>,
        vars: &BTreeSet<String>,
        allowed_roots: &[&str],
        ctx: &StepScope<'_>,
    ) {
        for path in vars {
            let segs: Vec<&str> = path.split('.').collect();
            let root = segs[0];
            let at = self.index.locate(field.pos, path);
            let width = path.len();
            if !allowed_roots.contains(&root) {
                let known = if allowed_roots.len() == 1 {
                    format!("only `{}` is available here", allowed_roots[0])
                } else {
                    format!("available here: {}", backticked(allowed_roots, ", "))
                };
                let help = did_you_mean(root, allowed_roots.iter().copied()).unwrap_or(known);
                self.error(
                    at,
                    "undefined-variable",
                    format!("`{root}` is not defined in `{}`", field.label),
                )
                .with_width_mut(width)
                .help = Some(help);
                continue;
            }
            let second = segs.get(1).copied();
            match (root, second) {
                ("secrets", Some(name)) => {
                    self.used_secrets.insert(name.to_string());
                    if !ctx.secrets.contains(&name) {
                        let help =
                            did_you_mean(name, ctx.secrets.iter().copied()).unwrap_or_else(|| {
                                format!("add `{name}` to the playbook's `secrets:` list")
                            });
                        self.error(
                            at,
                            "undeclared-secret",
                            format!("secret `{name}` is not declared in `secrets:`"),
                        )
                        .with_width_mut(width)
                        .help = Some(help);
                    }
                }
                ("inputs", Some(name)) => {
                    self.used_inputs.insert(name.to_string());
                    if !ctx.inputs.contains(&name) {
                        self.unknown_input(at, width, "input", name, ctx.inputs.iter().copied());
                    }
                }
                ("steps", Some(name)) => {
                    self.step_reads.insert(name.to_string());
                    self.step_ref(at, width, name, segs.get(2).copied(), field, ctx)
                }
                ("steps", None) => self.reads_all_steps = true,
                ("incident", Some(name)) => self.field_ref(
                    at,
                    width,
                    "incident",
                    name,
                    &[
                        crate::incident::TEMPLATE_FIELDS,
                        crate::incident::RUN_FIELDS,
                    ]
                    .concat(),
                ),
                ("run", Some(name)) => self.field_ref(at, width, "run", name, RUN_FIELDS),
                ("playbook", Some(name)) => {
                    self.field_ref(at, width, "playbook", name, PLAYBOOK_FIELDS)
                }
                _ => {}
            }
        }
    }

    /// `what` (an input, a drill input) names `name`, which `inputs:` does not declare.
    pub(super) fn unknown_input<'n>(
        &mut self,
        at: Pos,
        width: usize,
        what: &str,
        name: &str,
        declared: impl IntoIterator<Item = &'n str>,
    ) {
        let help = did_you_mean(name, declared)
            .unwrap_or_else(|| format!("declare it under `inputs:` as `{name}:`"));
        self.error(
            at,
            "unknown-input",
            format!("{what} `{name}` is not declared in `inputs:`"),
        )
        .with_width_mut(width)
        .help = Some(help);
    }

    pub(super) fn field_ref(
        &mut self,
        at: Pos,
        width: usize,
        root: &str,
        name: &str,
        fields: &[&str],
    ) {
        if !fields.contains(&name) {
            let help = did_you_mean(name, fields.iter().copied())
                .unwrap_or_else(|| format!("`{root}` has: {}", fields.join(", ")));
            self.error(
                at,
                "undefined-variable",
                format!("`{root}.{name}` does not exist"),
            )
            .with_width_mut(width)
            .help = Some(help);
        }
    }

    pub(super) fn step_ref(
        &mut self,
        at: Pos,
        width: usize,
        name: &str,
        output: Option<&str>,
        field: &Field<'_>,
        ctx: &StepScope<'_>,
    ) {
        let Some(&target) = ctx.ids.get(name) else {
            let help = did_you_mean(name, ctx.ids.keys().copied());
            self.error(
                at,
                "unknown-step-ref",
                format!("`steps.{name}` refers to a step that does not exist"),
            )
            .with_width_mut(width)
            .help = help;
            return;
        };
        if let Some(me) = ctx.current
            && !ctx.ancestry.is_some_and(|a| a.contains(me, target))
        {
            let msg = if target == me {
                format!(
                    "step `{}` reads its own output `steps.{name}` in `{}`",
                    ctx.current_id, field.label
                )
            } else {
                format!(
                    "step `{}` reads `steps.{name}`, but `{name}` is not one of its `needs` (directly or indirectly), so its output may not exist yet",
                    ctx.current_id
                )
            };
            self.error(at, "not-an-ancestor", msg)
                .with_width_mut(width)
                .help = Some(format!("add `{name}` to `needs` of `{}`", ctx.current_id));
        }
        if let Some(out) = output
            && !STEP_OUTPUTS.contains(&out)
        {
            let help = did_you_mean(out, STEP_OUTPUTS.iter().copied())
                .unwrap_or_else(|| format!("a step has: {}", STEP_OUTPUTS.join(", ")));
            self.error(
                at,
                "undefined-variable",
                format!("`steps.{name}.{out}` is not a step output"),
            )
            .with_width_mut(width)
            .help = Some(help);
        }
    }

    pub(super) fn check_field(&mut self, field: &Field<'_>, roots: &[&str], ctx: &StepScope<'_>) {
        let analysed = match field.kind {
            FieldKind::Expression => template::analyze_expression(field.text),
            _ => {
                if !template::is_templated(field.text) {
                    if field.kind == FieldKind::Url {
                        self.literal_url(field);
                    }
                    return;
                }
                template::analyze_template(field.text)
            }
        };
        match analysed {
            Err(e) => self.syntax(field, e),
            Ok(vars) => {
                self.refs(field, &vars, roots, ctx);
                if field.kind == FieldKind::Url {
                    self.templated_url(field);
                }
                self.injection(field);
            }
        }
    }

    pub(super) fn literal_url(&mut self, field: &Field<'_>) {
        match url::Url::parse(field.text.trim()) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => self.unsupported_scheme(field, u.scheme()),
            Err(e) => {
                self.error(
                    field.pos,
                    "invalid-url",
                    format!(
                        "`{}`: invalid URL `{}`: {e}",
                        field.label,
                        field.text.trim()
                    ),
                )
                .with_width_mut(field.text.len());
            }
        }
    }

    pub(super) fn templated_url(&mut self, field: &Field<'_>) {
        let prefix = field.text.trim_start();
        let literal = &prefix[..prefix
            .find("{{")
            .or_else(|| prefix.find("{%"))
            .unwrap_or(prefix.len())];
        if let Some(i) = literal.find("://") {
            let scheme = &literal[..i];
            if !matches!(scheme, "http" | "https") {
                self.unsupported_scheme(field, scheme);
            }
        }
    }

    /// The one finding for a URL field whose scheme is not http or https.
    fn unsupported_scheme(&mut self, field: &Field<'_>, scheme: &str) {
        self.error(
            field.pos,
            "invalid-url",
            format!("`{}`: unsupported URL scheme `{scheme}`", field.label),
        )
        .help = Some("use an http:// or https:// URL".into());
    }
}
