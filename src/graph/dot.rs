//! A [`Graph`] in Graphviz DOT, for `dot -Tsvg` and tools that read it.
//!
//! Every id and label is a double-quoted DOT string: `\` and `"` are
//! backslash-escaped (so `\N`, `\G` and `\l` from a label stay text), line
//! breaks are ours alone (`\n` between label lines), and no label is an
//! HTML-like `<…>` label. Node ids are generated.

use super::model::{EdgeKind, Graph, State};
use super::text::{LABEL_CHARS, clean};

/// `text` as a quoted DOT string.
pub fn quote(text: &str) -> String {
    format!("\"{}\"", escape(&clean(text, LABEL_CHARS)))
}

fn escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out
}

/// A node's label: each line cleaned and escaped, joined by DOT's `\n`.
fn label(lines: &[String]) -> String {
    let parts: Vec<String> = lines
        .iter()
        .map(|l| escape(&clean(l, LABEL_CHARS)))
        .collect();
    format!("\"{}\"", parts.join("\\n"))
}

/// `graph` as a `digraph`.
pub fn render(graph: &Graph) -> String {
    let mut out = format!("digraph {} {{\n", quote(&graph.title));
    out.push_str("    rankdir=TB;\n");
    out.push_str("    node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", fontname=\"Helvetica\"];\n");
    out.push_str("    edge [fontname=\"Helvetica\", fontsize=10];\n");
    let node = |n: &super::model::Node| {
        let mut attrs = vec![format!("label={}", label(&Graph::node_lines(n)))];
        if n.confirm {
            attrs.push("shape=hexagon".into());
        }
        match &n.outcome {
            Some(o) => {
                let (fill, stroke) = o.state.colours();
                attrs.push(format!("fillcolor=\"{fill}\", color=\"{stroke}\""));
                if o.state == State::NotReached {
                    attrs.push("style=\"rounded,filled,dashed\"".into());
                }
            }
            None if n.simulate_in_drill => attrs.push("style=\"rounded,filled,dashed\"".into()),
            None => {}
        }
        format!("{} [{}];", n.key, attrs.join(", "))
    };
    for n in graph.top_level() {
        out.push_str(&format!("    {}\n", node(n)));
    }
    for (i, group) in graph.groups.iter().enumerate() {
        out.push_str(&format!("    subgraph cluster_{i} {{\n"));
        out.push_str(&format!("        label={};\n", quote(&group.title)));
        out.push_str("        style=dashed;\n");
        for &n in &group.nodes {
            out.push_str(&format!("        {}\n", node(&graph.nodes[n])));
        }
        out.push_str("    }\n");
    }
    for e in &graph.edges {
        let mut attrs = Vec::new();
        match e.kind {
            EdgeKind::Needs => {}
            EdgeKind::OnFailure => attrs.push("style=dashed, color=\"#c62828\"".to_string()),
            EdgeKind::Always => attrs.push("penwidth=2.5".to_string()),
        }
        if let Some(l) = e.label() {
            attrs.push(format!("label={}", quote(&l)));
        }
        let (from, to) = (&graph.nodes[e.from].key, &graph.nodes[e.to].key);
        if attrs.is_empty() {
            out.push_str(&format!("    {from} -> {to};\n"));
        } else {
            out.push_str(&format!("    {from} -> {to} [{}];\n", attrs.join(", ")));
        }
    }
    if let Some(note) = &graph.note {
        out.push_str(&format!("    labelloc=b;\n    label={};\n", quote(note)));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_and_backslashes_are_escaped() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quote("a\\\"];x"), r#""a\\\"];x""#);
        assert_eq!(quote("a\nb"), "\"a b\"");
        assert_eq!(quote("<b>x</b>"), "\"<b>x</b>\"");
    }
}
