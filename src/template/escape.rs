//! Escaping a value for the shell context its placeholder sits in, and the
//! run-time refusals no escaping can replace: an argument that would be an
//! option, a heredoc body line that would end the heredoc, a newline in a
//! comment.
//!
//! A `shell:` template is rewritten before it is compiled: every
//! `{{ expr }}` becomes `{{ (expr) | __irctl_shell(N) }}`, where slot `N`
//! carries the context [`super::shell::classify`] found. The filter sees the
//! value and its slot, so escaping never depends on the value's type or on
//! whether a filter marked it "safe" (`tojson`, `join` and `replace` do) —
//! only an explicit `| safe` in the placeholder passes a value raw.

use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr};
use minijinja::{Error, ErrorKind, State, Value};

use super::jinja::{self, Segment};
use super::shell::{self, Context, Slot};

/// The filter every shell placeholder is piped through.
pub(crate) const FILTER: &str = "__irctl_shell";
/// The context variable that carries the slots of the template being rendered.
pub(crate) const SLOTS: &str = "__irctl_shell_slots";
/// The filter that marks a value as an intended option (`| allow_option`).
pub const ALLOW_OPTION: &str = "allow_option";

/// What the filter needs to know about one placeholder.
#[derive(Debug)]
struct Spec {
    context: Context,
    /// The value begins an argument with no `--` before it and no `| allow_option`.
    option_check: bool,
    /// `| safe`: the author asked for the value as it is.
    raw: bool,
    line_neighbours: Option<(String, String)>,
    backticks: u32,
    source: String,
    /// The expression as written, to name it when it is undefined.
    expr: String,
}

/// The slots of one template, handed to the filter through the context.
#[derive(Debug)]
struct Specs(Vec<Spec>);

impl Object for Specs {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
}

/// A secret in a shell script: a reference to the environment variable that
/// carries it, written for the context it lands in, so the value itself
/// never appears in the script or in `ps`.
#[derive(Debug)]
pub struct ShellSecret {
    variable: String,
}

impl Object for ShellSecret {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }
    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"${{{}}}\"", self.variable)
    }
}

/// The template value for a secret carried in environment variable `variable`.
pub fn shell_secret(variable: &str) -> Value {
    Value::from_object(ShellSecret {
        variable: variable.to_string(),
    })
}

/// Rewrites `src` so every placeholder is escaped for its context; returns
/// the new source and the value the context must carry as [`SLOTS`].
pub(crate) fn rewrite(src: &str) -> Result<(String, Value), shell::LexError> {
    let slots = shell::classify(src)?;
    let mut exprs = jinja::segments(src).into_iter().filter_map(|s| match s {
        Segment::Value(p) => Some(p),
        _ => None,
    });
    let mut out = String::with_capacity(src.len() + slots.len() * 32);
    let mut specs = Vec::with_capacity(slots.len());
    let mut last = 0;
    for (n, slot) in slots.into_iter().enumerate() {
        let Some(p) = exprs.next() else { break };
        let filters = jinja::filters(p.expr);
        let Slot {
            start,
            end,
            context,
            word_start,
            after_dashdash,
            line_neighbours,
            backticks,
            ..
        } = slot;
        out.push_str(&src[last..start]);
        out.push_str(if p.trim_before { "{{- (" } else { "{{ (" });
        out.push_str(p.expr);
        out.push_str(&format!(") | {FILTER}({n})"));
        out.push_str(if p.trim_after { " -}}" } else { " }}" });
        last = end;
        specs.push(Spec {
            context,
            option_check: word_start && !after_dashdash && !filters.contains(&ALLOW_OPTION),
            raw: filters.contains(&"safe"),
            line_neighbours,
            backticks,
            source: src[start..end].to_string(),
            expr: p.expr.trim().to_string(),
        });
    }
    out.push_str(&src[last..]);
    Ok((out, Value::from_object(Specs(specs))))
}

/// The `__irctl_shell` filter.
pub(crate) fn filter(state: &State, value: Value, n: usize) -> Result<Value, Error> {
    let specs = state.lookup(SLOTS);
    let spec = specs
        .as_ref()
        .and_then(|s| s.downcast_object_ref::<Specs>())
        .and_then(|s| s.0.get(n))
        .ok_or_else(|| Error::new(ErrorKind::InvalidOperation, "shell slot missing"))?;
    if let Some(secret) = value.downcast_object_ref::<ShellSecret>() {
        return secret_reference(&spec.context, &secret.variable)
            .map(|s| Value::from_safe_string(in_backticks(s, spec.backticks)));
    }
    // The filter sees an undefined value instead of the strict environment
    // refusing to print it, so refuse it here: never an empty word.
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("`{}` is undefined", spec.expr),
        ));
    }
    let text = if value.is_none() {
        String::new()
    } else {
        value.to_string()
    };
    if spec.raw {
        return Ok(Value::from_safe_string(text));
    }
    escape(spec, &text)
        .map(|s| Value::from_safe_string(in_backticks(s, spec.backticks)))
        .map_err(|msg| Error::new(ErrorKind::InvalidOperation, msg))
}

fn secret_reference(context: &Context, var: &str) -> Result<String, Error> {
    Ok(match context {
        Context::Unquoted | Context::CommandName => format!("\"${{{var}}}\""),
        Context::DoubleQuoted | Context::Comment => format!("${{{var}}}"),
        Context::Heredoc { quoted: false, .. } => format!("${{{var}}}"),
        Context::SingleQuoted => format!("'\"${{{var}}}\"'"),
        Context::AnsiC => format!("'\"${{{var}}}\"$'"),
        Context::Heredoc { quoted: true, .. } => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "a secret cannot be expanded in a quoted heredoc; quote the delimiter less (`<<EOF`) or read the secret from the environment",
            ));
        }
        Context::Unsupported(place) => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("a value cannot be placed {place}"),
            ));
        }
    })
}

/// A short, printable form of a refused value for the error message.
fn shown(v: &str) -> String {
    let mut s: String = v.chars().take(60).collect();
    if s.len() < v.len() {
        s.push('…');
    }
    s.escape_debug().to_string()
}

/// Escapes `text` for `spec`'s context, or says why it cannot be used there.
fn escape(spec: &Spec, text: &str) -> Result<String, String> {
    if spec.option_check && text.starts_with('-') {
        return Err(format!(
            "argument from incident data starts with '-': `{}` is \"{}\", which a program would read as an option; put it after a `--` argument, or write `| {ALLOW_OPTION}` if an option is intended",
            spec.source,
            shown(text)
        ));
    }
    match &spec.context {
        Context::Unquoted | Context::CommandName => Ok(super::shell_quote(text)),
        Context::DoubleQuoted => Ok(double_quoted(text)),
        Context::SingleQuoted => Ok(text.replace('\'', r"'\''")),
        Context::AnsiC => Ok(ansi_c(text)),
        Context::Heredoc {
            quoted,
            delimiter,
            strip_tabs,
        } => {
            let out = if *quoted {
                text.to_string()
            } else {
                heredoc(text)
            };
            if ends_heredoc(&out, delimiter, *strip_tabs, spec.line_neighbours.as_ref()) {
                return Err(format!(
                    "`{}` would end the heredoc early: its value has a line that makes `{delimiter}`",
                    spec.source
                ));
            }
            Ok(out)
        }
        Context::Comment => {
            if text.contains(['\n', '\r']) {
                return Err(format!(
                    "`{}` sits in a shell comment and its value has a line break, which would end the comment",
                    spec.source
                ));
            }
            Ok(text.to_string())
        }
        Context::Unsupported(place) => Err(format!(
            "`{}` is {place}, where no value can be escaped",
            spec.source
        )),
    }
}

/// Inside `n` levels of `` `…` ``: each level first strips one backslash
/// from `\\`, `` \` `` and `\$`, and would end at a bare backtick even
/// inside quotes, so each level gets its own backslashes.
fn in_backticks(mut s: String, n: u32) -> String {
    for _ in 0..n {
        let mut out = String::with_capacity(s.len() + 8);
        for c in s.chars() {
            if matches!(c, '\\' | '`' | '$') {
                out.push('\\');
            }
            out.push(c);
        }
        s = out;
    }
    s
}

/// Inside `"…"`: `\`, `$`, `` ` `` and `"` lose their meaning behind a backslash.
pub fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '$' | '`' | '"') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Inside `$'…'`: a backslash escapes, and a quote is written `\047`, which
/// a shell without `$'…'` (dash reads `$` then `'…'`) keeps as text
/// rather than ending the quotes.
pub fn ansi_c(s: &str) -> String {
    s.replace('\\', r"\\").replace('\'', r"\047")
}

/// In an unquoted heredoc body: only `\`, `$` and `` ` `` are special.
pub fn heredoc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '\\' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Whether `value`, written between `neighbours` on its line, produces a
/// line that ends a heredoc delimited by `delimiter`. Without known
/// neighbours (another value or a tag on the line), a value with a line
/// break or one that could complete the delimiter is refused.
fn ends_heredoc(
    value: &str,
    delimiter: &str,
    strip_tabs: bool,
    neighbours: Option<&(String, String)>,
) -> bool {
    let norm = |l: &str| -> String {
        if strip_tabs {
            l.trim_start_matches('\t').to_string()
        } else {
            l.to_string()
        }
    };
    match neighbours {
        Some((before, after)) => format!("{before}{value}{after}")
            .split('\n')
            .any(|l| norm(l) == delimiter),
        None => {
            value.contains('\n') || {
                let v = norm(value);
                !v.is_empty() && delimiter.contains(v.as_str())
            }
        }
    }
}

/// Checks rendered `command:` arguments: an argument that is exactly one
/// placeholder and begins with `-` is refused unless a literal `--` comes
/// before it or the placeholder says `| allow_option`.
pub fn check_argv<S: AsRef<str>>(sources: &[S], rendered: &[String]) -> Result<(), String> {
    let mut dashdash = false;
    for (i, (src, value)) in sources.iter().zip(rendered).enumerate() {
        let src = src.as_ref();
        if i > 0 && src.trim() == "--" {
            dashdash = true;
        }
        let Some(expr) = super::single_expression(src) else {
            continue;
        };
        if i == 0 || dashdash || jinja::filters(expr).contains(&ALLOW_OPTION) {
            continue;
        }
        if value.starts_with('-') {
            return Err(format!(
                "argument from incident data starts with '-': `command[{i}]` is \"{}\", which the program would read as an option; put it after a `--` argument, or write `| {ALLOW_OPTION}` if an option is intended",
                shown(value)
            ));
        }
    }
    Ok(())
}
