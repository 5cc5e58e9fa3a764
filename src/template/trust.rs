//! Which template values are untrusted: everything that can come from
//! outside the playbook. `validate` uses it to refuse `| safe` on such a
//! value, a command name or comment made of one, and to point at values
//! that begin an argument.
//!
//! The analysis is static and conservative: a value is trusted only when
//! every variable it reads is `secrets.*`, `run.*`, `playbook.*` or an
//! input whose default is a literal (or built only from those). Incident
//! data, step outputs, inputs without a default or with a default built
//! from the incident, and every variable the template itself defines
//! (`{% set %}`, `{% with %}`, loop variables, macro arguments) are
//! untrusted; so is an expression that does not parse.

use std::collections::BTreeSet;

use super::jinja::{self, Segment};
use super::shell::{self, Context, LexError};

/// Roots whose values the playbook or irctl itself provides.
const TRUSTED_ROOTS: &[&str] = &["secrets", "run", "playbook"];

/// The trust policy of one playbook.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    untrusted_inputs: BTreeSet<String>,
}

impl Trust {
    /// A policy under which the named inputs carry outside data.
    pub fn new(untrusted_inputs: impl IntoIterator<Item = String>) -> Self {
        Trust {
            untrusted_inputs: untrusted_inputs.into_iter().collect(),
        }
    }

    /// Whether any of the variable paths `vars` reads untrusted data.
    pub fn reads_untrusted(&self, vars: &BTreeSet<String>) -> bool {
        vars.iter().any(|path| {
            let mut segs = path.split('.');
            let root = segs.next().unwrap_or_default();
            match root {
                "inputs" => segs
                    .next()
                    .is_none_or(|name| self.untrusted_inputs.contains(name)),
                _ => !TRUSTED_ROOTS.contains(&root),
            }
        })
    }

    /// Whether the expression `expr` may evaluate to untrusted data.
    pub fn expression_untrusted(&self, expr: &str) -> bool {
        match super::analyze_expression(expr) {
            Ok(vars) => self.reads_untrusted(&vars),
            Err(_) => true,
        }
    }

    /// Whether the template `source` may render untrusted data.
    pub fn template_untrusted(&self, source: &str) -> bool {
        match super::analyze_template(source) {
            Ok(vars) => self.reads_untrusted(&vars),
            Err(_) => true,
        }
    }
}

/// Something `validate` reports about a placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// `| safe` (raw output) applied to untrusted data.
    RawUntrusted,
    /// An untrusted value as the command to run.
    CommandName,
    /// An untrusted value in a shell comment.
    Comment,
    /// A value where no escaping works.
    Unsupported(&'static str),
    /// An untrusted value begins an argument with no `--` before it.
    MaybeOption,
}

/// A finding, with the placeholder's text and where it starts in the template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong.
    pub problem: Problem,
    /// The tag's text as written (`{{ incident.labels.x }}`).
    pub text: String,
    /// 1-based line inside the template.
    pub line: usize,
}

fn line_of(src: &str, offset: usize) -> usize {
    src[..offset].matches('\n').count() + 1
}

/// Every `| safe` applied to untrusted data in any template field.
pub fn raw_findings(trust: &Trust, source: &str) -> Vec<Finding> {
    if !source.contains("safe") {
        return Vec::new();
    }
    jinja::tags_with_filter(source, "safe")
        .into_iter()
        .filter(|tag| {
            // A tag's expression follows its keyword (`set x = …`, `for …`).
            let expr = tag
                .split_once('=')
                .filter(|(head, _)| head.trim_start().starts_with("set"))
                .map_or(*tag, |(_, e)| e);
            trust.expression_untrusted(expr)
        })
        .map(|tag| Finding {
            problem: Problem::RawUntrusted,
            text: tag.to_string(),
            line: source.find(tag).map_or(1, |o| line_of(source, o)),
        })
        .collect()
}

/// Checks every placeholder of a `shell:` template against its context.
pub fn shell_findings(trust: &Trust, source: &str) -> Result<Vec<Finding>, LexError> {
    let slots = shell::classify(source)?;
    let values = jinja::segments(source).into_iter().filter_map(|s| match s {
        Segment::Value(p) => Some(p),
        _ => None,
    });
    let mut out = Vec::new();
    for (slot, p) in slots.iter().zip(values) {
        let untrusted = trust.expression_untrusted(p.expr);
        let problem = match &slot.context {
            Context::Unsupported(place) => Some(Problem::Unsupported(place)),
            Context::CommandName if untrusted => Some(Problem::CommandName),
            Context::Comment if untrusted => Some(Problem::Comment),
            Context::Unquoted | Context::DoubleQuoted | Context::SingleQuoted | Context::AnsiC
                if untrusted
                    && slot.word_start
                    && !slot.after_dashdash
                    && !slot.after_option
                    && !jinja::filters(p.expr).contains(&super::escape::ALLOW_OPTION) =>
            {
                Some(Problem::MaybeOption)
            }
            _ => None,
        };
        if let Some(problem) = problem {
            out.push(Finding {
                problem,
                text: source[slot.start..slot.end].to_string(),
                line: line_of(source, slot.start),
            });
        }
    }
    Ok(out)
}

/// Checks a `command:` argv: an untrusted program name is an error, an
/// untrusted whole argument with no `--` before it a possible option.
/// Returns the argument's index with the problem.
pub fn argv_findings(trust: &Trust, argv: &[&str]) -> Vec<(usize, Problem)> {
    let mut out = Vec::new();
    let mut dashdash = false;
    for (i, arg) in argv.iter().enumerate() {
        if i > 0 && arg.trim() == "--" {
            dashdash = true;
        }
        if i == 0 {
            if super::is_templated(arg) && trust.template_untrusted(arg) {
                out.push((0, Problem::CommandName));
            }
            continue;
        }
        if let Some(expr) = super::single_expression(arg)
            && !dashdash
            && trust.expression_untrusted(expr)
            && !jinja::filters(expr).contains(&super::escape::ALLOW_OPTION)
        {
            out.push((i, Problem::MaybeOption));
        }
    }
    out
}
