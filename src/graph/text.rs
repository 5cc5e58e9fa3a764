//! Cleaning untrusted label text before any format escapes it: control
//! characters become spaces (a newline must not start a new statement),
//! bidirectional overrides are dropped (they make text read differently
//! from what it is), runs of spaces collapse, and the result is bounded so
//! one long expression cannot swallow a diagram.

/// The longest label, in characters, before it is cut with `…`.
pub const LABEL_CHARS: usize = 80;

/// `raw` on one line, without control or bidi characters, at most `max` characters.
pub fn clean(raw: &str, max: usize) -> String {
    let mut out = String::new();
    let mut space = false;
    for c in raw.chars() {
        if is_bidi(c) || matches!(c, '\u{200b}'..='\u{200f}' | '\u{feff}') {
            continue;
        }
        if c.is_control() || c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
    }
    if out.chars().count() > max {
        out = out.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
    }
    out
}

/// Whether `c` is a bidirectional embedding, override or isolate.
pub fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{061c}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_controls_and_bidi_are_gone() {
        assert_eq!(clean("a\nb\r\n\tc\u{1b}[31m", 80), "a b c [31m");
        assert_eq!(clean("x\u{202e}gpj.exe", 80), "xgpj.exe");
        assert_eq!(clean("  lead  ", 80), "lead");
    }

    #[test]
    fn long_text_is_cut() {
        assert_eq!(clean("abcdef", 4), "abc…");
        assert_eq!(clean("abcd", 4), "abcd");
    }
}
