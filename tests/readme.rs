//! The README's shape: tables that render as tables and sections that
//! appear once. Several people edit it at once; a blank line inside a
//! table or a section merged in twice is easy to miss in review.

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The README's lines outside fenced code blocks, numbered from 1.
fn prose(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

#[test]
fn every_table_starts_with_a_header_and_a_delimiter_row() {
    let text = readme();
    let lines = prose(&text);
    for (k, (n, line)) in lines.iter().enumerate() {
        let starts_table = line.starts_with('|')
            && k.checked_sub(1)
                .is_none_or(|p| !lines[p].1.starts_with('|'));
        if starts_table {
            let next = lines.get(k + 1).map_or("", |(_, l)| *l);
            assert!(
                next.starts_with("| ---") || next.starts_with("|---") || next.starts_with("| :"),
                "README line {n} starts a table without a delimiter row (a blank line inside a table?): {line}"
            );
        }
    }
}

#[test]
fn every_section_heading_appears_once() {
    let text = readme();
    let mut seen = std::collections::HashSet::new();
    for (n, line) in prose(&text) {
        if line.starts_with("## ") {
            assert!(
                seen.insert(line),
                "README line {n} repeats the section `{line}`"
            );
        }
    }
}
