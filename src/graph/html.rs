//! One self-contained HTML page: no script, font, stylesheet or image
//! from anywhere, a Content-Security-Policy that forbids them all but the
//! page's own inline style, the Gantt chart as inline SVG, and tables
//! below it. Every text passes the caller's redaction first and is then
//! HTML-escaped, with control and bidirectional characters removed, so
//! a step's output or a note cannot add markup, break out of an attribute
//! or read differently from what it is.

use super::gantt::Chart;
use super::model::State;
use super::svg::{self, escape};
use super::text::is_bidi;

/// The Content-Security-Policy of every page.
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

const STYLE: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#212121}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #e0e0e0;padding:.25em .5em;text-align:left;vertical-align:top}\
td.text{white-space:pre-wrap;word-break:break-word;max-width:60em}\
.legend span{display:inline-block;padding:0 .5em;margin-right:.5em;border:1px solid}";

/// A table of the page.
#[derive(Clone, Debug, Default)]
pub struct Table {
    /// The heading above it.
    pub heading: String,
    /// Column names.
    pub header: Vec<String>,
    /// Cells, row by row.
    pub rows: Vec<Vec<String>>,
}

/// A page: a title, paragraphs, the chart, and tables.
#[derive(Clone, Debug, Default)]
pub struct Page {
    /// The `<title>` and `<h1>`.
    pub title: String,
    /// Paragraphs under the title.
    pub paragraphs: Vec<String>,
    /// The Gantt chart, drawn as SVG.
    pub chart: Option<Chart>,
    /// Tables below the chart.
    pub tables: Vec<Table>,
}

/// `text` for HTML: control characters but line breaks and tabs dropped,
/// bidi overrides removed, markup escaped.
fn text(raw: &str) -> String {
    let kept: String = raw
        .chars()
        .filter(|c| (*c == '\n' || *c == '\t' || !c.is_control()) && !is_bidi(*c))
        .collect();
    escape(&kept)
}

impl Page {
    /// The page as HTML; `redact` is applied to every text before it is escaped.
    pub fn render(&self, redact: &dyn Fn(&str) -> String) -> String {
        let t = |s: &str| text(&redact(s));
        let mut out =
            String::from("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n"
        ));
        out.push_str("<meta name=\"referrer\" content=\"no-referrer\">\n");
        out.push_str(&format!("<title>{}</title>\n", t(&self.title)));
        out.push_str(&format!("<style>{STYLE}</style>\n</head>\n<body>\n"));
        out.push_str(&format!("<h1>{}</h1>\n", t(&self.title)));
        for p in &self.paragraphs {
            out.push_str(&format!("<p>{}</p>\n", t(p)));
        }
        if let Some(chart) = self.chart.as_ref().filter(|c| !c.rows.is_empty()) {
            out.push_str("<h2>Gantt</h2>\n<div class=\"chart\">\n");
            out.push_str(&svg::render(chart, redact));
            out.push_str("</div>\n<p class=\"legend\">");
            for s in State::ALL {
                let (fill, stroke) = s.colours();
                out.push_str(&format!(
                    "<span style=\"background:{fill};border-color:{stroke}\">{}</span>",
                    s.as_str().replace('_', " ")
                ));
            }
            out.push_str(&format!(
                "<span style=\"background:#fff;border-color:{}\">&#9670; milestone</span></p>\n",
                svg::MILESTONE
            ));
        }
        for table in &self.tables {
            out.push_str(&format!("<h2>{}</h2>\n<table>\n<tr>", t(&table.heading)));
            for h in &table.header {
                out.push_str(&format!("<th>{}</th>", t(h)));
            }
            out.push_str("</tr>\n");
            for row in &table.rows {
                out.push_str("<tr>");
                for cell in row {
                    out.push_str(&format!("<td class=\"text\">{}</td>", t(cell)));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_after_redaction() {
        let page = Page {
            title: "t</title><script>alert(1)</script>".into(),
            paragraphs: vec!["a<img src=x onerror=alert(1)> s3cr3t&\u{202e}x\u{1b}[0m".into()],
            ..Page::default()
        };
        let html = page.render(&|s: &str| s.replace("s3cr3t&", "***"));
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("*** x[0m") || html.contains("***x[0m"),
            "{html}"
        );
        assert!(!html.contains('\u{202e}') && !html.contains('\u{1b}'));
    }
}
