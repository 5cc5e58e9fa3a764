//! A [`Chart`] drawn as inline SVG by irctl itself, so an HTML page needs
//! no script to show it: one row per milestone or step, bars scaled to the
//! chart's span, a time axis on top. Every text is redacted by the caller's
//! function and then XML-escaped; each bar carries `data-row` and
//! `data-start` so tests can check what was drawn where.

use chrono::{DateTime, Utc};

use super::gantt::Chart;
use super::model::State;
use super::text::clean;

/// Width of the label column, in pixels.
const LABEL_W: f64 = 240.0;
/// Width of the time area.
const PLOT_W: f64 = 720.0;
/// Height of one row.
const ROW_H: f64 = 24.0;
/// Height of the axis above the rows.
const AXIS_H: f64 = 28.0;
/// Colour of key-time milestones.
pub const MILESTONE: &str = "#6a1b9a";

/// `text` escaped for XML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The tick spacing, in milliseconds, that gives at most ten ticks over `span_ms`.
fn tick_ms(span_ms: i64) -> i64 {
    const STEPS: [i64; 20] = [
        100, 250, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000, 120_000, 300_000,
        600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000, 43_200_000, 86_400_000,
    ];
    STEPS
        .into_iter()
        .find(|s| span_ms / s <= 10)
        .unwrap_or_else(|| (span_ms / 10 / 86_400_000 + 1) * 86_400_000)
}

/// `chart` as an `<svg>` element; `redact` is applied to every text first.
pub fn render(chart: &Chart, redact: &dyn Fn(&str) -> String) -> String {
    let Some((first, last)) = chart.span() else {
        return String::new();
    };
    let span_ms = (last - first).num_milliseconds().max(1);
    let x = |t: DateTime<Utc>| {
        LABEL_W + ((t - first).num_milliseconds() as f64 / span_ms as f64) * PLOT_W
    };
    let height = AXIS_H + ROW_H * chart.rows.len() as f64 + 8.0;
    let width = LABEL_W + PLOT_W + 20.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"gantt\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"{}\">\n",
        escape(&clean(&redact(&chart.title), 120))
    );
    out.push_str(&format!(
        "<rect x=\"0\" y=\"0\" width=\"{width}\" height=\"{height}\" fill=\"#ffffff\"/>\n"
    ));
    let tick = tick_ms(span_ms);
    let days = span_ms >= 86_400_000;
    let first_ms = first.timestamp_millis();
    let mut t = first_ms + (tick - first_ms.rem_euclid(tick)) % tick;
    while t <= last.timestamp_millis() {
        if let Some(at) = DateTime::<Utc>::from_timestamp_millis(t) {
            let tx = x(at);
            let text = if days {
                at.format("%m-%d %H:%M").to_string()
            } else if tick < 1_000 {
                at.format("%H:%M:%S%.3f").to_string()
            } else {
                at.format("%H:%M:%S").to_string()
            };
            out.push_str(&format!(
                "<line x1=\"{tx:.1}\" y1=\"{}\" x2=\"{tx:.1}\" y2=\"{height}\" stroke=\"#e0e0e0\"/>\n<text x=\"{tx:.1}\" y=\"16\" font-size=\"10\" text-anchor=\"middle\" fill=\"#616161\">{text}</text>\n",
                AXIS_H - 6.0
            ));
        }
        t += tick;
    }
    let mut section = None;
    for (i, r) in chart.rows.iter().enumerate() {
        let y = AXIS_H + ROW_H * i as f64;
        if section != Some(&r.section) {
            section = Some(&r.section);
            out.push_str(&format!(
                "<line x1=\"0\" y1=\"{y}\" x2=\"{width}\" y2=\"{y}\" stroke=\"#9e9e9e\"/>\n"
            ));
        }
        let label = escape(&clean(&redact(&r.label), 40));
        out.push_str(&format!(
            "<text x=\"6\" y=\"{:.1}\" font-size=\"12\" fill=\"#212121\">{label}</text>\n",
            y + ROW_H * 0.68
        ));
        let start = escape(&r.start.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        match r.end {
            None => {
                let cx = x(r.start);
                let cy = y + ROW_H / 2.0;
                let d = ROW_H * 0.3;
                out.push_str(&format!(
                    "<polygon class=\"milestone\" data-row=\"{i}\" data-start=\"{start}\" points=\"{:.1},{cy:.1} {cx:.1},{:.1} {:.1},{cy:.1} {cx:.1},{:.1}\" fill=\"{MILESTONE}\"/>\n",
                    cx - d,
                    cy - d,
                    cx + d,
                    cy + d
                ));
            }
            Some(end) => {
                let (fill, stroke) = r.state.unwrap_or(State::NotReached).colours();
                let x0 = x(r.start);
                // A bar shorter than a pixel or two would vanish.
                let w = (x(end.max(r.start)) - x0).max(4.0);
                out.push_str(&format!(
                    "<rect class=\"bar\" data-row=\"{i}\" data-start=\"{start}\" x=\"{x0:.1}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\" stroke=\"{stroke}\"/>\n",
                    y + 4.0,
                    ROW_H - 8.0
                ));
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("</text><script>'\"&"),
            "&lt;/text&gt;&lt;script&gt;&#39;&quot;&amp;"
        );
    }

    #[test]
    fn ticks_stay_few() {
        assert_eq!(tick_ms(900), 100);
        assert_eq!(tick_ms(60_000), 10_000);
        assert!(365 * 86_400_000 / tick_ms(365 * 86_400_000) <= 10);
    }
}
