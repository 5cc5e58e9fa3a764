//! A [`Graph`] as a Mermaid `flowchart`, which GitHub, GitLab and most wikis
//! render inside Markdown.
//!
//! Mermaid parses a label as a quoted string and renders it as HTML, so
//! every label is written between double quotes with each character that
//! is not plainly harmless (letters, digits, space, `_ . , : / = + -`) as a
//! Mermaid entity code (`#60;`): a quote cannot end the string, `;` or a
//! newline cannot start a statement (`click n0 …`), and `<script>`, links,
//! backticks and Markdown arrive as text.

use super::model::{EdgeKind, Graph, State};
use super::text::{LABEL_CHARS, clean};

/// `text` as a quoted Mermaid string (see the module docs).
pub fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in clean(text, LABEL_CHARS).chars() {
        if c.is_ascii_alphanumeric()
            || matches!(c, ' ' | '_' | '.' | ',' | ':' | '/' | '=' | '+' | '-')
            || (!c.is_ascii() && c.is_alphanumeric())
        {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", u32::from(c)));
        }
    }
    out.push('"');
    out
}

/// A node's label: each line quoted-escaped, joined by `<br>`, all in one string.
fn label(lines: &[String]) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|l| {
            let q = quote(l);
            q[1..q.len() - 1].to_string()
        })
        .collect();
    format!("\"{}\"", parts.join("<br>"))
}

/// `graph` as a `flowchart TD` (without a Markdown fence).
pub fn render(graph: &Graph) -> String {
    let mut out = String::from("flowchart TD\n");
    let node = |n: &super::model::Node| {
        let l = label(&Graph::node_lines(n));
        if n.confirm {
            format!("{}{{{{{l}}}}}", n.key)
        } else {
            format!("{}[{l}]", n.key)
        }
    };
    for n in graph.top_level() {
        out.push_str(&format!("    {}\n", node(n)));
    }
    for (i, group) in graph.groups.iter().enumerate() {
        out.push_str(&format!("    subgraph g{i} [{}]\n", quote(&group.title)));
        for &n in &group.nodes {
            out.push_str(&format!("        {}\n", node(&graph.nodes[n])));
        }
        out.push_str("    end\n");
    }
    for e in &graph.edges {
        let arrow = match e.kind {
            EdgeKind::Needs => "-->",
            EdgeKind::OnFailure => "-.->",
            EdgeKind::Always => "==>",
        };
        let (from, to) = (&graph.nodes[e.from].key, &graph.nodes[e.to].key);
        match e.label() {
            Some(l) => out.push_str(&format!("    {from} {arrow}|{}| {to}\n", quote(&l))),
            None => out.push_str(&format!("    {from} {arrow} {to}\n")),
        }
    }
    let mut classes = Vec::new();
    for state in State::ALL {
        let keys: Vec<&str> = graph
            .nodes
            .iter()
            .filter(|n| n.outcome.as_ref().is_some_and(|o| o.state == state))
            .map(|n| n.key.as_str())
            .collect();
        if !keys.is_empty() {
            classes.push((state, keys));
        }
    }
    for (state, keys) in &classes {
        let (fill, stroke) = state.colours();
        let dash = if *state == State::NotReached {
            ",stroke-dasharray:4 3"
        } else {
            ""
        };
        out.push_str(&format!(
            "    classDef {} fill:{fill},stroke:{stroke},color:#000{dash}\n",
            state.as_str()
        ));
        out.push_str(&format!(
            "    class {} {}\n",
            keys.join(","),
            state.as_str()
        ));
    }
    let simulated: Vec<&str> = graph
        .nodes
        .iter()
        .filter(|n| n.simulate_in_drill && n.outcome.is_none())
        .map(|n| n.key.as_str())
        .collect();
    if !simulated.is_empty() {
        out.push_str("    classDef drill stroke-dasharray:5 3\n");
        out.push_str(&format!("    class {} drill\n", simulated.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_brackets_and_statements_become_entities() {
        assert_eq!(quote("a\"b"), "\"a#34;b\"");
        assert_eq!(quote("x;click n0 call"), "\"x#59;click n0 call\"");
        assert_eq!(quote("a-->b"), "\"a--#62;b\"");
        assert_eq!(quote("<script>"), "\"#60;script#62;\"");
        assert_eq!(quote("#1;"), "\"#35;1#59;\"");
        assert_eq!(quote("line\nclick"), "\"line click\"");
    }
}
