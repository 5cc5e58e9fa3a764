//! Templates: one minijinja environment, context-aware escaping, and the
//! static analysis `validate` uses.
//!
//! Incident fields are attacker-controlled, so escaping depends on where a
//! value lands: in a `shell` script each value is escaped for the shell
//! context its placeholder sits in (`shell/` lexes the script,
//! `escape.rs` escapes and refuses), inside a URL it is percent-encoded
//! (`url.rs` also decides what picks a request's host), in a Slack or Teams
//! message it is escaped for that markup (`markup.rs`), in JSON bodies it
//! is a JSON value (see [`render_json`]), in a text body sent as JSON it is
//! JSON string content. `path.rs` keeps a templated directory under its
//! literal prefix. Opting out is the
//! explicit, reviewable `| safe` filter, which `validate` refuses on
//! untrusted data (`trust.rs`). Undefined variables are errors, never empty
//! strings.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use crate::memo::Memo;

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

mod escape;
mod jinja;
pub mod markup;
pub mod path;
pub mod shell;
pub mod trust;
pub mod url;

pub use escape::{ALLOW_OPTION, check_argv, shell_secret};
pub use trust::Trust;

/// Where a rendered template ends up, which decides how values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// A `sh -c` script: values are single-quoted.
    Shell,
    /// A URL: values are percent-encoded, unless the template is one expression.
    Url,
    /// Plain text (messages, argv elements, headers): values as they are.
    Text,
    /// Slack mrkdwn: values have `&`, `<`, `>` escaped.
    Slack,
    /// Teams (Adaptive Card Markdown): values have Markdown backslash-escaped.
    Teams,
    /// A text body sent as JSON: values are escaped as JSON string content,
    /// so a value can neither end a string nor add keys.
    JsonText,
}

impl Sink {
    fn template_name(self) -> &'static str {
        match self {
            Sink::Shell => "shell",
            Sink::Url => "url",
            Sink::Text => "text",
            Sink::Slack => "slack",
            Sink::Teams => "teams",
            Sink::JsonText => "json_text",
        }
    }
}

/// The names a template may use at the top level.
pub const ROOTS: &[&str] = &["incident", "inputs", "secrets", "steps", "run", "playbook"];

/// The names a `notify: { team }` message may use: [`ROOTS`] and `team`,
/// the team the message is for.
pub const TEAM_MESSAGE_ROOTS: &[&str] = &[
    "incident", "inputs", "secrets", "steps", "run", "playbook", "team",
];

/// Quotes `s` for POSIX sh so it is always one literal word.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_@%+=:,./-".contains(&b))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Percent-encodes `s` as one URL component.
pub fn url_component(s: &str) -> String {
    use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
    const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// `s` escaped as the inside of a JSON string (no surrounding quotes).
pub fn json_string_content(s: &str) -> String {
    let quoted = serde_json::Value::from(s).to_string();
    quoted
        .strip_prefix('"')
        .and_then(|q| q.strip_suffix('"'))
        .unwrap_or(&quoted)
        .to_string()
}

fn build_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_recursion_limit(64);
    // Bounded work per render: a hostile or buggy template cannot spin forever.
    env.set_fuel(Some(1_000_000));
    env.set_auto_escape_callback(|name| match name {
        "shell" => AutoEscape::Custom("shell".into()),
        "url" => AutoEscape::Custom("url".into()),
        "slack" => AutoEscape::Custom("slack".into()),
        "teams" => AutoEscape::Custom("teams".into()),
        "json_text" => AutoEscape::Custom("json_text".into()),
        _ => AutoEscape::None,
    });
    env.set_formatter(|out, state, value| {
        let mode = state.auto_escape();
        let raw = || -> String {
            if value.is_none() || value.is_undefined() {
                String::new()
            } else {
                value.to_string()
            }
        };
        match mode {
            AutoEscape::Custom(name) if name == "shell" && !value.is_safe() => {
                out.write_str(&shell_quote(&raw()))?
            }
            AutoEscape::Custom(name) if name == "url" && !value.is_safe() => {
                out.write_str(&url::component(&raw()))?
            }
            AutoEscape::Custom(name) if name == "json_text" && !value.is_safe() => {
                out.write_str(&json_string_content(&raw()))?
            }
            AutoEscape::Custom(name) if !value.is_safe() => {
                out.write_str(&markup_escape(name, &raw()))?
            }
            _ => out.write_str(&raw())?,
        }
        Ok(())
    });
    env.add_filter("shell_quote", |s: String| shell_quote(&s));
    env.add_filter(escape::FILTER, escape::filter);
    // Marks a value that begins an argument as an intended option; the
    // value itself is unchanged (see `escape::check_argv`).
    env.add_filter(ALLOW_OPTION, |v: Value| v);
    env.add_filter("truncate_lines", |s: String, n: usize| {
        s.lines().take(n).collect::<Vec<_>>().join("\n")
    });
    env
}

/// Escapes a value for the chat markup named by an auto-escape mode.
fn markup_escape(mode: &str, s: &str) -> String {
    match mode {
        "slack" => markup::slack(s),
        "teams" => markup::teams(s),
        _ => s.to_string(),
    }
}

/// Converts any serialisable value into a template value.
pub fn value(v: impl serde::Serialize) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// The shared environment; built once per process.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(build_environment)
}

/// A template or expression that failed to parse.
#[derive(Clone, Debug)]
pub struct SyntaxError {
    /// 1-based line inside the template.
    pub line: usize,
    /// The parser's message.
    pub message: String,
}

fn syntax_error(err: &minijinja::Error) -> SyntaxError {
    SyntaxError {
        line: err.line().unwrap_or(1),
        message: err
            .detail()
            .map(str::to_string)
            .unwrap_or_else(|| err.kind().to_string()),
    }
}

/// Whether `source` contains template syntax at all.
pub fn is_templated(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

type Analysis = Result<BTreeSet<String>, SyntaxError>;

/// Analyses are memoised per process ([`crate::memo`]): analysis parses a
/// template twice (compile, then variable discovery), which is most of what
/// `validate` spends per playbook, and repos repeat the same templates.
static TEMPLATES: Memo<Analysis> = Memo::new();
static EXPRESSIONS: Memo<Analysis> = Memo::new();

/// Parses a template and returns the variable paths it reads (`steps.a.stdout`).
pub fn analyze_template(source: &str) -> Analysis {
    TEMPLATES.get_or(source, || {
        let env = environment();
        let tmpl = env
            .template_from_named_str("analysis", source)
            .map_err(|e| syntax_error(&e))?;
        Ok(tmpl.undeclared_variables(true).into_iter().collect())
    })
}

/// Parses a boolean expression (`when`) and returns the variable paths it reads.
pub fn analyze_expression(source: &str) -> Analysis {
    EXPRESSIONS.get_or(source, || {
        let env = environment();
        let expr = env
            .compile_expression(source)
            .map_err(|e| syntax_error(&e))?;
        Ok(expr.undeclared_variables(true).into_iter().collect())
    })
}

/// A template that failed at run time (undefined variable, bad filter argument).
#[derive(Clone, Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

fn render_error(err: minijinja::Error) -> RenderError {
    let mut msg = err.kind().to_string();
    if let Some(detail) = err.detail() {
        msg = format!("{msg}: {detail}");
    }
    if let Some(line) = err.line() {
        msg = format!("{msg} (template line {line})");
    }
    RenderError(msg)
}

/// If the whole template is one `{{ expr }}`, returns the expression.
pub fn single_expression(source: &str) -> Option<&str> {
    let t = source.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") {
        return None;
    }
    Some(
        inner
            .trim()
            .trim_start_matches('-')
            .trim_end_matches('-')
            .trim(),
    )
}

/// Renders `source` for `sink` with `ctx`.
pub fn render(source: &str, sink: Sink, ctx: &Value) -> Result<String, RenderError> {
    if !is_templated(source) {
        return Ok(source.to_string());
    }
    // A URL that is exactly one value (`{{ secrets.WEBHOOK }}`) is a whole
    // URL, not a component to encode.
    let sink = if sink == Sink::Url && single_expression(source).is_some() {
        Sink::Text
    } else {
        sink
    };
    let env = environment();
    if sink == Sink::Shell {
        let (source, slots) = escape::rewrite(source).map_err(|e| RenderError(e.to_string()))?;
        let tmpl = env
            .template_from_named_str(sink.template_name(), &source)
            .map_err(render_error)?;
        let slots = std::collections::BTreeMap::from([(escape::SLOTS, slots)]);
        let ctx = minijinja::value::merge_maps([Value::from(slots), ctx.clone()]);
        return tmpl.render(ctx).map_err(render_error);
    }
    let tmpl = env
        .template_from_named_str(sink.template_name(), source)
        .map_err(render_error)?;
    tmpl.render(ctx).map_err(render_error)
}

/// Evaluates a `when` expression to a boolean (Jinja truthiness).
pub fn eval_bool(expr: &str, ctx: &Value) -> Result<bool, RenderError> {
    let env = environment();
    let compiled = env.compile_expression(expr).map_err(render_error)?;
    let v = compiled.eval(ctx).map_err(render_error)?;
    Ok(v.is_true())
}

/// Renders every string inside a JSON value. A string that is exactly one
/// `{{ expr }}` becomes the expression's value with its own type; other
/// strings render as text. Values are never spliced into JSON source.
pub fn render_json(
    value: &serde_json::Value,
    ctx: &Value,
) -> Result<serde_json::Value, RenderError> {
    render_json_for(value, Sink::Text, ctx)
}

/// [`render_json`] for JSON that carries `sink`'s markup (Slack `blocks`):
/// every value's strings are escaped for it, including a typed value.
pub fn render_json_for(
    value: &serde_json::Value,
    sink: Sink,
    ctx: &Value,
) -> Result<serde_json::Value, RenderError> {
    use serde_json::Value as J;
    Ok(match value {
        J::String(s) => {
            if let Some(expr) = single_expression(s) {
                let env = environment();
                let compiled = env.compile_expression(expr).map_err(render_error)?;
                let v = compiled.eval(ctx).map_err(render_error)?;
                let json = serde_json::to_value(&v)
                    .map_err(|e| RenderError(format!("value is not JSON: {e}")))?;
                if v.is_safe() {
                    json
                } else {
                    escape_strings(json, sink)
                }
            } else {
                J::String(render(s, sink, ctx)?)
            }
        }
        J::Array(items) => J::Array(
            items
                .iter()
                .map(|v| render_json_for(v, sink, ctx))
                .collect::<Result<_, _>>()?,
        ),
        J::Object(map) => {
            let mut out = serde_json::Map::new();
            for (k, v) in map {
                out.insert(render(k, Sink::Text, ctx)?, render_json_for(v, sink, ctx)?);
            }
            J::Object(out)
        }
        other => other.clone(),
    })
}

/// Escapes every string inside a typed value for a markup sink.
fn escape_strings(value: serde_json::Value, sink: Sink) -> serde_json::Value {
    use serde_json::Value as J;
    match (value, sink) {
        (J::String(s), Sink::Slack) => J::String(markup::slack(&s)),
        (J::String(s), Sink::Teams) => J::String(markup::teams(&s)),
        (J::Array(items), _) => {
            J::Array(items.into_iter().map(|v| escape_strings(v, sink)).collect())
        }
        (J::Object(map), _) => J::Object(
            map.into_iter()
                .map(|(k, v)| (k, escape_strings(v, sink)))
                .collect(),
        ),
        (other, _) => other,
    }
}

/// Every string inside a JSON value, for analysis.
pub fn json_strings(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) => out.push(s.clone()),
        serde_json::Value::Array(items) => items.iter().for_each(|v| json_strings(v, out)),
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                out.push(k.clone());
                json_strings(v, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_values_are_quoted() {
        let ctx = value(
            serde_json::json!({"incident": {"labels": {"x": "$(touch /tmp/p); rm -rf ~ `id`\n"}}}),
        );
        let out = render("echo {{ incident.labels.x }}", Sink::Shell, &ctx).unwrap();
        assert_eq!(out, "echo '$(touch /tmp/p); rm -rf ~ `id`\n'");
        let out = render("echo {{ \"it's\" }}", Sink::Shell, &ctx).unwrap();
        assert_eq!(out, r"echo 'it'\''s'");
    }

    #[test]
    fn url_components_are_encoded_but_whole_urls_are_not() {
        let ctx = value(serde_json::json!({"q": "a&b=c d", "u": "https://h/x?y=1"}));
        assert_eq!(
            render("https://g/s?q={{ q }}", Sink::Url, &ctx).unwrap(),
            "https://g/s?q=a%26b%3Dc%20d"
        );
        assert_eq!(
            render("{{ u }}", Sink::Url, &ctx).unwrap(),
            "https://h/x?y=1"
        );
    }

    #[test]
    fn undefined_is_an_error() {
        let ctx = value(serde_json::json!({}));
        assert!(render("{{ nope }}", Sink::Text, &ctx).is_err());
    }

    #[test]
    fn analysis_reports_nested_paths() {
        let vars = analyze_template(
            "{{ steps.a.stdout }} {% for x in incident.alerts %}{{ x.labels }}{% endfor %}",
        )
        .unwrap();
        assert!(vars.contains("steps.a.stdout"), "{vars:?}");
        assert!(
            vars.iter().any(|v| v.starts_with("incident.alerts")),
            "{vars:?}"
        );
        assert!(!vars.iter().any(|v| v.starts_with('x')), "{vars:?}");
    }

    #[test]
    fn json_values_keep_types() {
        let ctx = value(serde_json::json!({"n": 3, "s": "a\"b"}));
        let v = render_json(
            &serde_json::json!({"count": "{{ n }}", "text": "say {{ s }}"}),
            &ctx,
        )
        .unwrap();
        assert_eq!(v, serde_json::json!({"count": 3, "text": "say a\"b"}));
    }

    #[test]
    fn chat_values_are_escaped_but_the_authors_markup_is_not() {
        let ctx = value(serde_json::json!({"l": "<!channel> [x](http://e) & *b*"}));
        assert_eq!(
            render("<!here> {{ l }}", Sink::Slack, &ctx).unwrap(),
            "<!here> &lt;!channel&gt; [x](http://e) &amp; *b*"
        );
        assert_eq!(
            render("**{{ l }}**", Sink::Teams, &ctx).unwrap(),
            r"**\<\!channel\> \[x\]\(http://e\) \& \*b\***"
        );
        assert_eq!(
            render("{{ '<@U1>' | safe }}", Sink::Slack, &ctx).unwrap(),
            "<@U1>"
        );
        let blocks = render_json_for(
            &serde_json::json!([{"text": "{{ l }}"}, {"text": "see {{ l }}"}]),
            Sink::Slack,
            &ctx,
        )
        .unwrap();
        assert_eq!(
            blocks,
            serde_json::json!([
                {"text": "&lt;!channel&gt; [x](http://e) &amp; *b*"},
                {"text": "see &lt;!channel&gt; [x](http://e) &amp; *b*"}
            ])
        );
    }
}

#[cfg(test)]
mod shell_tests;
