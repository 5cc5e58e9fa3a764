//! A grammar check of our own for the Mermaid subset irctl emits (the
//! official CLI needs a Chromium download): a `flowchart TD` of generated
//! node ids with quoted labels, subgraphs, three arrow kinds, `classDef`
//! and `class`; and a `gantt` with one fixed `dateFormat`. Quoted text may
//! hold only entity codes where Mermaid would read syntax (`#…;`), and no
//! markup but our own `<br>`. Whatever else appears is rejected, so a
//! label that escaped its quotes fails the test that drew it.

#![allow(dead_code)]

use std::collections::BTreeSet;

use regex::Regex;

/// Checks `text` (one diagram, without a fence); `Err` names the first bad line.
pub fn check(text: &str) -> Result<(), String> {
    let mut lines = text.lines();
    match lines.next().map(str::trim) {
        Some("flowchart TD") => flowchart(lines),
        Some("gantt") => gantt(lines),
        other => Err(format!("unknown diagram type: {other:?}")),
    }
}

/// Every ```` ```mermaid ```` block of a Markdown document.
pub fn blocks(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line) {
            (None, "```mermaid") => current = Some(String::new()),
            (Some(_), "```") => out.extend(current.take()),
            (Some(block), l) => {
                block.push_str(l);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "unterminated mermaid block");
    out
}

/// Checks one quoted string's content.
fn quoted(content: &str) -> Result<(), String> {
    let entity = Regex::new(r"^#(\d+|[a-z]+);").unwrap();
    let mut rest = content;
    while let Some(c) = rest.chars().next() {
        if c == '#' {
            let m = entity
                .find(rest)
                .ok_or_else(|| format!("bare `#` in {content:?}"))?;
            rest = &rest[m.end()..];
            continue;
        }
        if rest.starts_with("<br>") {
            rest = &rest[4..];
            continue;
        }
        if matches!(
            c,
            '"' | '<' | '>' | ';' | '`' | '\n' | '\r' | '|' | '[' | ']' | '{' | '}'
        ) || c.is_control()
        {
            return Err(format!("`{c}` unescaped in {content:?}"));
        }
        rest = &rest[c.len_utf8()..];
    }
    Ok(())
}

fn flowchart<'a>(lines: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let qs = r#""([^"\n]*)""#;
    let subgraph = Regex::new(&format!(r"^subgraph g\d+ \[{qs}\]$")).unwrap();
    let node = Regex::new(&format!(r"^(n\d+)(?:\[{qs}\]|\{{\{{{qs}\}}\}})$")).unwrap();
    let edge = Regex::new(&format!(r"^(n\d+) (?:-->|-\.->|==>)(?:\|{qs}\|)? (n\d+)$")).unwrap();
    let class_def =
        Regex::new(r"^classDef [a-z_]+ [a-z-]+:[#0-9a-z. ]+(,[a-z-]+:[#0-9a-z. ]+)*$").unwrap();
    let class = Regex::new(r"^class (n\d+(?:,n\d+)*) [a-z_]+$").unwrap();
    let mut defined = BTreeSet::new();
    let mut used = Vec::new();
    let mut depth = 0usize;
    for (i, raw) in lines.enumerate() {
        let line = raw.trim();
        let bad = |why: String| format!("line {}: {why}: {raw:?}", i + 2);
        if line.is_empty() {
            continue;
        }
        if let Some(c) = subgraph.captures(line) {
            quoted(&c[1]).map_err(bad)?;
            depth += 1;
        } else if line == "end" {
            depth = depth
                .checked_sub(1)
                .ok_or_else(|| bad("`end` without `subgraph`".into()))?;
        } else if let Some(c) = node.captures(line) {
            if !defined.insert(c[1].to_string()) {
                return Err(bad("node defined twice".into()));
            }
            let label = c.get(2).or(c.get(3)).map_or("", |m| m.as_str());
            quoted(label).map_err(bad)?;
        } else if let Some(c) = edge.captures(line) {
            if let Some(l) = c.get(2) {
                quoted(l.as_str()).map_err(bad)?;
            }
            used.push(c[1].to_string());
            used.push(c[3].to_string());
        } else if class_def.is_match(line) {
        } else if let Some(c) = class.captures(line) {
            used.extend(c[1].split(',').map(str::to_string));
        } else {
            return Err(bad("not in the grammar".into()));
        }
    }
    if depth != 0 {
        return Err("unclosed subgraph".into());
    }
    match used.iter().find(|u| !defined.contains(*u)) {
        Some(u) => Err(format!("`{u}` is used but never defined")),
        None => Ok(()),
    }
}

fn gantt<'a>(lines: impl Iterator<Item = &'a str>) -> Result<(), String> {
    let name = r"[^#:;\n]+";
    let time = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3})";
    let title = Regex::new(&format!("^title {name}$")).unwrap();
    let section = Regex::new(&format!("^section {name}$")).unwrap();
    let task = Regex::new(&format!(
        r"^{name} :(?:milestone, |crit, |done, )?(r\d+), {time}, {time}$"
    ))
    .unwrap();
    let mut ids = BTreeSet::new();
    let mut tasks = 0;
    for (i, raw) in lines.enumerate() {
        let line = raw.trim();
        let bad = |why: &str| format!("line {}: {why}: {raw:?}", i + 2);
        if line == "dateFormat YYYY-MM-DD HH:mm:ss.SSS" || line == "axisFormat %H:%M:%S" {
            continue;
        }
        if title.is_match(line) || section.is_match(line) {
            continue;
        }
        let c = task
            .captures(line)
            .ok_or_else(|| bad("not in the grammar"))?;
        if !ids.insert(c[1].to_string()) {
            return Err(bad("task id used twice"));
        }
        if c[3] < c[2] {
            return Err(bad("ends before it starts"));
        }
        tasks += 1;
    }
    if tasks == 0 {
        return Err("a gantt without tasks".into());
    }
    Ok(())
}
