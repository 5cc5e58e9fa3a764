//! An incident on a time axis: key times and notes as milestones, each
//! step as a bar, in sections. [`Chart`] is the data; [`render`] writes it
//! as a Mermaid `gantt` block and [`super::svg`] draws it.
//!
//! Mermaid's gantt grammar has no escapes: a task name ends at `:` and
//! `#`, `;` ends a statement, so names keep only letters, digits, spaces
//! and `_ . , - ( ) / = + @`, everything else becoming a space. Times are
//! written to the millisecond (`dateFormat YYYY-MM-DD HH:mm:ss.SSS`), so
//! steps shorter than a second still get a bar.

use chrono::{DateTime, Utc};

use super::model::State;
use super::text::clean;

/// The longest task name in a gantt, in characters.
const NAME_CHARS: usize = 60;

/// One row of the chart.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The section it belongs to (`incident`, `run 2024…-a1b2c3`).
    pub section: String,
    /// What it is (untrusted: step ids, note authors).
    pub label: String,
    /// When it started (a milestone's one instant).
    pub start: DateTime<Utc>,
    /// When it ended; `None` for a milestone.
    pub end: Option<DateTime<Utc>>,
    /// How a step ended, for its colour; `None` for milestones.
    pub state: Option<State>,
}

/// The rows of an incident's chart, in the order they are drawn.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Chart {
    /// Its title.
    pub title: String,
    /// The rows, grouped by section in first-seen order.
    pub rows: Vec<Row>,
}

impl Chart {
    /// The earliest and latest instants on the chart.
    pub fn span(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let first = self.rows.iter().map(|r| r.start).min()?;
        let last = self.rows.iter().map(|r| r.end.unwrap_or(r.start)).max()?;
        Some((first, last))
    }

    /// The section names, in first-seen order.
    pub fn sections(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !out.contains(&r.section.as_str()) {
                out.push(&r.section);
            }
        }
        out
    }
}

/// `text` as a gantt task or section name (see the module docs).
pub fn name(text: &str) -> String {
    let kept: String = clean(text, NAME_CHARS)
        .chars()
        .map(|c| {
            if c.is_alphanumeric()
                || matches!(
                    c,
                    ' ' | '_' | '.' | ',' | '-' | '(' | ')' | '/' | '=' | '+' | '@'
                )
            {
                c
            } else {
                ' '
            }
        })
        .collect();
    let joined = kept.split_whitespace().collect::<Vec<_>>().join(" ");
    if joined.is_empty() {
        "(unnamed)".to_string()
    } else {
        joined
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// `chart` as a Mermaid `gantt` (without a Markdown fence); `None` when it has no rows.
pub fn render(chart: &Chart) -> Option<String> {
    chart.span()?;
    let mut out = String::from("gantt\n");
    out.push_str(&format!("    title {}\n", name(&chart.title)));
    out.push_str("    dateFormat YYYY-MM-DD HH:mm:ss.SSS\n");
    out.push_str("    axisFormat %H:%M:%S\n");
    for section in chart.sections() {
        out.push_str(&format!("    section {}\n", name(section)));
        for (i, r) in chart.rows.iter().enumerate() {
            if r.section != section {
                continue;
            }
            let (tag, end) = match (r.end, r.state) {
                (None, _) => ("milestone, ", r.start),
                (Some(end), Some(State::Failed | State::Cancelled)) => ("crit, ", end),
                (Some(end), Some(State::Succeeded | State::Simulated)) => ("done, ", end),
                (Some(end), _) => ("", end),
            };
            out.push_str(&format!(
                "    {} :{tag}r{i}, {}, {}\n",
                name(&r.label),
                time(r.start),
                time(end.max(r.start))
            ));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_what_ends_them() {
        assert_eq!(name("a:b#c;d\ne"), "a b c d e");
        assert_eq!(name("<script>"), "script");
        assert_eq!(name(":::"), "(unnamed)");
    }
}
