//! The template source split into what the shell sees (text) and what
//! minijinja fills in (`{{ … }}` placeholders, `{% … %}` tags), so the shell
//! lexer can classify every placeholder by its position in the script.
//!
//! Whitespace control (`{{-`, `-}}`, `{%-`, `-%}`) is applied to the text
//! the way minijinja applies it, and `{% raw %}` bodies are plain text.

/// One piece of a template, in source order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment<'a> {
    /// Text that reaches the output as written.
    Text(&'a str),
    /// A `{{ … }}` placeholder.
    Value(Placeholder<'a>),
    /// A `{% … %}` tag: it may repeat, drop or reorder the text around it.
    Tag(&'a str),
}

/// One `{{ … }}` in the source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Placeholder<'a> {
    /// Byte offset of `{{` in the source.
    pub start: usize,
    /// Byte offset just past `}}`.
    pub end: usize,
    /// The expression, without delimiters and whitespace-control marks.
    pub expr: &'a str,
    /// Whether it opens with `{{-`.
    pub trim_before: bool,
    /// Whether it closes with `-}}`.
    pub trim_after: bool,
}

/// The byte offset just past the `close` delimiter that ends a tag opened
/// before `from`, skipping string literals (a `"}}"` inside is not the end).
fn tag_end(src: &str, from: usize, close: &str) -> Option<usize> {
    let bytes = src.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => {
                i += 2;
                continue;
            }
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'"' || b == b'\'' => quote = Some(b),
            None if src[i..].starts_with(close) => return Some(i + close.len()),
            None => {}
        }
        i += 1;
    }
    None
}

/// Splits `src` into segments. Unterminated tags are left to minijinja's
/// parser to report; here they end the scan as text.
pub(crate) fn segments(src: &str) -> Vec<Segment<'_>> {
    let mut out: Vec<Segment<'_>> = Vec::new();
    let mut text_start = 0;
    let mut i = 0;
    let mut trim_next = false;
    fn text(src: &str, a: usize, b: usize, trim_start: bool, trim_end: bool) -> &str {
        let t = &src[a..b];
        let t = if trim_start { t.trim_start() } else { t };
        if trim_end { t.trim_end() } else { t }
    }
    while let Some(rel) = src[i..].find('{') {
        let at = i + rel;
        let rest = &src[at..];
        let (close, kind) = if rest.starts_with("{{") {
            ("}}", 'v')
        } else if rest.starts_with("{%") {
            ("%}", 't')
        } else if rest.starts_with("{#") {
            ("#}", 'c')
        } else {
            i = at + 1;
            continue;
        };
        let Some(end) = tag_end(src, at + 2, close) else {
            break;
        };
        let inner = &src[at + 2..end - 2];
        let trim_before = inner.starts_with('-');
        let trim_after = inner.ends_with('-') && inner.len() > 1;
        let t = text(src, text_start, at, trim_next, trim_before);
        if !t.is_empty() {
            out.push(Segment::Text(t));
        }
        let body = inner.strip_prefix(['-', '+']).unwrap_or(inner);
        let body = if trim_after || body.ends_with('+') {
            &body[..body.len() - 1]
        } else {
            body
        };
        trim_next = trim_after;
        i = end;
        text_start = end;
        match kind {
            'v' => out.push(Segment::Value(Placeholder {
                start: at,
                end,
                expr: body.trim(),
                trim_before,
                trim_after,
            })),
            't' => {
                out.push(Segment::Tag(body.trim()));
                if body.trim() == "raw" {
                    // Everything up to `{% endraw %}` is text, braces and all.
                    let Some(close_at) = find_endraw(src, end) else {
                        break;
                    };
                    let (raw_end, after) = close_at;
                    let t = text(src, end, raw_end, trim_after, false);
                    if !t.is_empty() {
                        out.push(Segment::Text(t));
                    }
                    out.push(Segment::Tag("endraw"));
                    i = after;
                    text_start = after;
                    trim_next = false;
                }
            }
            _ => {}
        }
    }
    let t = text(src, text_start, src.len(), trim_next, false);
    if !t.is_empty() {
        out.push(Segment::Text(t));
    }
    out
}

/// Where `{% endraw %}` starts and ends after `from`.
fn find_endraw(src: &str, from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while let Some(rel) = src[i..].find("{%") {
        let at = i + rel;
        let end = tag_end(src, at + 2, "%}")?;
        let inner = src[at + 2..end - 2].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if inner == "endraw" {
            return Some((at, end));
        }
        i = end;
    }
    None
}

/// The filters applied at the top level of `expr` (`a | b(1) | c` → `b`, `c`).
pub(crate) fn filters(expr: &str) -> Vec<&str> {
    let bytes = expr.as_bytes();
    let mut depth = 0i32;
    let mut quote: Option<u8> = None;
    let mut cuts = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => depth -= 1,
                b'|' if depth == 0 => cuts.push(i),
                _ => {}
            },
        }
        i += 1;
    }
    let mut out = Vec::new();
    for (n, &c) in cuts.iter().enumerate() {
        let end = cuts.get(n + 1).copied().unwrap_or(expr.len());
        let f = expr[c + 1..end].trim();
        let name_end = f
            .find(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
            .unwrap_or(f.len());
        out.push(&f[..name_end]);
    }
    out
}

/// Whether any `{{ … }}` or `{% … %}` of `src` applies the filter `name`,
/// with the tag's text, for checks such as `| safe` on untrusted data.
pub(crate) fn tags_with_filter<'a>(src: &'a str, name: &str) -> Vec<&'a str> {
    segments(src)
        .into_iter()
        .filter_map(|s| match s {
            Segment::Value(p) => Some(p.expr),
            Segment::Tag(t) => Some(t),
            Segment::Text(_) => None,
        })
        .filter(|t| {
            // A tag's filters follow its first word (`set x = a | safe`).
            filters(t).contains(&name)
                || t.split_whitespace().next() == Some("filter") && t.contains(name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_text_values_and_tags() {
        let s = segments("a {{ x }} b {% if y %}c{% endif %}{# n #}d");
        assert_eq!(s.len(), 7, "{s:?}");
        assert_eq!(s[0], Segment::Text("a "));
        assert!(matches!(&s[1], Segment::Value(p) if p.expr == "x" && p.start == 2 && p.end == 9));
        assert_eq!(s[2], Segment::Text(" b "));
        assert_eq!(s[3], Segment::Tag("if y"));
        assert_eq!(s[6], Segment::Text("d"));
    }

    #[test]
    fn whitespace_control_and_raw() {
        let s = segments("a  {{- x -}}  b {% raw %}{{ y }}{% endraw %}");
        assert_eq!(s[0], Segment::Text("a"));
        assert_eq!(s[2], Segment::Text("b "));
        assert_eq!(s[4], Segment::Text("{{ y }}"));
    }

    #[test]
    fn string_literals_do_not_close_a_tag() {
        let s = segments(r#"{{ "}}" ~ x }}z"#);
        assert!(matches!(&s[0], Segment::Value(p) if p.expr == r#""}}" ~ x"#));
        assert_eq!(s[1], Segment::Text("z"));
    }

    #[test]
    fn filter_chains() {
        assert_eq!(filters("a | b(1, '|') | c"), ["b", "c"]);
        assert_eq!(filters("(a | safe)"), Vec::<&str>::new());
        assert_eq!(
            tags_with_filter("{% set y = x | safe %}{{ y }}", "safe"),
            ["set y = x | safe"]
        );
    }
}
