//! Rendering a [`Postmortem`]: the built-in Markdown template, or a team's
//! own minijinja template over the same data, strictly (an undefined name
//! is an error) and with a fuel limit, so a team's loop cannot hang a
//! responder; plus the `cell` filter Markdown tables need.

use minijinja::{Environment, UndefinedBehavior};

use super::postmortem::Postmortem;

/// The built-in Markdown template.
pub const DEFAULT_TEMPLATE: &str = include_str!("postmortem.md.j2");

/// A Markdown table cell: pipes escaped, line breaks flattened (the
/// templates' `cell` filter, and `irctl timeline --format markdown`).
pub fn cell(value: String) -> String {
    value.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// The largest template file read: a template is a page of Markdown.
const TEMPLATE_CAP: u64 = 1024 * 1024;

/// The template a postmortem is rendered with: the built-in one, or a team's own file.
#[derive(Clone, Debug)]
pub struct Template {
    text: String,
    name: String,
}

impl Template {
    /// The team's template at `path`, else the built-in [`DEFAULT_TEMPLATE`].
    pub fn load(path: Option<&std::path::Path>) -> anyhow::Result<Template> {
        use anyhow::Context as _;
        Ok(match path {
            Some(path) => Template {
                text: crate::capped::read_to_string(path, TEMPLATE_CAP)
                    .with_context(|| format!("cannot read template `{}`", path.display()))?,
                name: path.display().to_string(),
            },
            None => Template {
                text: DEFAULT_TEMPLATE.to_string(),
                name: "postmortem.md".to_string(),
            },
        })
    }

    /// `pm` as this template renders it.
    pub fn render(&self, pm: &Postmortem) -> anyhow::Result<String> {
        render(pm, &self.text, &self.name)
    }
}

/// `pm` as pretty JSON with a final line break: the data every template sees.
pub fn to_json(pm: &Postmortem) -> anyhow::Result<String> {
    Ok(serde_json::to_string_pretty(pm)? + "\n")
}

/// Renders `pm` with `template` (the built-in one, or a team's own); `name`
/// names the template in errors.
pub fn render(pm: &Postmortem, template: &str, name: &str) -> anyhow::Result<String> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| anyhow::anyhow!("template syntax: {e}"))?,
    );
    // A template is a team's file, but a loop must not hang a responder.
    env.set_fuel(Some(50_000_000));
    env.add_filter("cell", cell);
    env.add_template(name, template)
        .map_err(|e| anyhow::anyhow!("invalid template `{name}`: {}", template_error(&e)))?;
    let tmpl = env
        .get_template(name)
        .map_err(|e| anyhow::anyhow!("invalid template `{name}`: {}", template_error(&e)))?;
    tmpl.render(crate::template::value(pm))
        .map_err(|e| anyhow::anyhow!("cannot render template `{name}`: {}", template_error(&e)))
}

fn template_error(e: &minijinja::Error) -> String {
    match e.line() {
        Some(line) => format!(
            "line {line}: {}",
            e.detail().unwrap_or(&e.kind().to_string())
        ),
        None => e.to_string(),
    }
}
