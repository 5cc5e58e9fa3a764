//! Masking secrets in text: the [`Redactor`] finds every form of every
//! secret in one pass and masks overlapping matches as one span; a
//! [`Stream`] does the same for output that arrives in pieces.

use aho_corasick::{AhoCorasick, MatchKind};

use super::encoding::{WIDEN, base64_cores, forms, is_base64};
use super::{MASK, Secret};

/// Replaces secret values in text.
///
/// Every form of every secret is one pattern of a single Aho-Corasick
/// automaton, so a text is scanned once however many secrets and forms there
/// are. All matches are found, overlapping ones included, and overlapping
/// matches are masked as one span: when two secrets overlap in a text (or one
/// is a prefix of another) neither leaves a visible tail.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    /// `None` when there is nothing to redact.
    matcher: Option<Matcher>,
    /// See [`Redactor::longest`].
    longest: usize,
}

#[derive(Clone, Debug)]
enum Matcher {
    /// The automaton over every secret form, and per pattern whether a match
    /// widens to the base64 word around it.
    Forms { ac: AhoCorasick, widen: Vec<bool> },
    /// The automaton could not be built (only for gigabytes of secrets):
    /// fail closed and mask any non-empty text whole.
    Everything,
}

impl Redactor {
    /// Builds a redactor for `secrets`, including their encoded forms.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a Secret>) -> Self {
        // (needle, whether a match widens to its whole base64 word)
        let mut needles: Vec<(String, bool)> = Vec::new();
        for v in secrets.into_iter().map(Secret::expose) {
            // Very short values would shred unrelated text; they are still
            // never printed deliberately, but are not pattern-replaced
            // (`resolve` refuses declared secrets that short).
            if v.len() < 4 {
                continue;
            }
            needles.extend(forms(v).into_iter().map(|f| (f, false)));
            needles.extend(base64_cores(v).into_iter().map(|f| (f, true)));
        }
        if needles.is_empty() {
            return Redactor::default();
        }
        // A needle that is both plain and a base64 core widens.
        needles.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        needles.dedup_by(|a, b| a.0 == b.0);
        let longest = needles
            .iter()
            .map(|(n, w)| n.len() + if *w { 2 * WIDEN } else { 0 })
            .max()
            .unwrap_or(0);
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .build(needles.iter().map(|(n, _)| n))
            .map_or(Matcher::Everything, |ac| Matcher::Forms {
                ac,
                widen: needles.iter().map(|(_, w)| *w).collect(),
            });
        Redactor {
            matcher: Some(matcher),
            longest,
        }
    }

    /// Bytes of the longest form of any secret: a piece of output may end
    /// inside a secret only within this many bytes of its end.
    pub fn longest(&self) -> usize {
        self.longest
    }

    /// The merged spans of `hay` to mask, in order; `None` when everything
    /// must be masked (see [`Matcher::Everything`]).
    fn spans(&self, hay: &[u8]) -> Option<Vec<(usize, usize)>> {
        let (ac, widen) = match &self.matcher {
            None => return Some(Vec::new()),
            Some(Matcher::Everything) => return None,
            Some(Matcher::Forms { ac, widen }) => (ac, widen),
        };
        let mut spans: Vec<(usize, usize)> = ac
            .find_overlapping_iter(hay)
            .map(|m| {
                let (mut s, mut e) = (m.start(), m.end());
                if widen.get(m.pattern().as_usize()).copied().unwrap_or(false) {
                    let (left, right) = (s.saturating_sub(WIDEN), (e + WIDEN).min(hay.len()));
                    while s > left && is_base64(hay[s - 1]) {
                        s -= 1;
                    }
                    while e < right && is_base64(hay[e]) {
                        e += 1;
                    }
                }
                (s, e)
            })
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (s, e) in spans {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        Some(merged)
    }

    /// `hay` with every span to mask replaced by `***`.
    fn redact_bytes(&self, hay: &[u8]) -> Vec<u8> {
        let Some(spans) = self.spans(hay) else {
            return if hay.is_empty() {
                Vec::new()
            } else {
                MASK.as_bytes().to_vec()
            };
        };
        let mut out = Vec::with_capacity(hay.len());
        let mut copied = 0;
        for (s, e) in spans {
            out.extend_from_slice(&hay[copied..s]);
            out.extend_from_slice(MASK.as_bytes());
            copied = e;
        }
        out.extend_from_slice(&hay[copied..]);
        out
    }

    /// The largest length `<= at` to cut `bytes` to without leaving part of
    /// a secret at the end. When the text goes on, `bytes` must run at
    /// least `longest() - 1` bytes past `at`, so that any secret starting
    /// before `at` is seen whole.
    pub fn safe_cut(&self, bytes: &[u8], at: usize) -> usize {
        let at = at.min(bytes.len());
        match self.spans(bytes) {
            None => 0,
            Some(spans) => spans
                .iter()
                .find(|(s, e)| *s < at && *e > at)
                .map_or(at, |(s, _)| *s),
        }
    }

    /// A redactor for output that arrives in pieces.
    pub fn stream(&self) -> Stream {
        Stream {
            redactor: self.clone(),
            pending: Vec::new(),
        }
    }

    /// Whether there is anything to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `text` with every secret form replaced by `***`.
    pub fn redact(&self, text: &str) -> String {
        if self.is_empty() {
            return text.to_string();
        }
        // Matches of UTF-8 needles in UTF-8 text start and end on character
        // boundaries, and widening only crosses ASCII, so this stays UTF-8.
        String::from_utf8(self.redact_bytes(text.as_bytes()))
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Redacts every string (and key) inside a JSON value.
    pub fn redact_json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as J;
        if self.is_empty() {
            return value.clone();
        }
        match value {
            J::String(s) => J::String(self.redact(s)),
            J::Array(items) => J::Array(items.iter().map(|v| self.redact_json(v)).collect()),
            J::Object(map) => J::Object(
                map.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Redacts output that arrives in pieces (a process's pipe): each piece is
/// shown only up to where no secret can still be completed by what comes
/// next, so a secret split across reads, lines or buffers is masked whole
/// and no fragment of it is ever shown.
#[derive(Debug)]
pub struct Stream {
    redactor: Redactor,
    pending: Vec<u8>,
}

/// Most bytes a [`Stream`] holds back while one masked span keeps growing
/// (only output made of overlapping secrets does that).
const MAX_HELD: usize = 64 * 1024;

impl Stream {
    /// Takes the next piece and returns, redacted, what can be shown now.
    pub fn push(&mut self, piece: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(piece);
        let at = self
            .pending
            .len()
            .saturating_sub(self.redactor.longest().saturating_sub(1));
        let mut cut = self.redactor.safe_cut(&self.pending, at);
        if cut == 0 && self.pending.len() > MAX_HELD {
            cut = at;
        }
        let rest = self.pending.split_off(cut);
        let shown = self.redactor.redact_bytes(&self.pending);
        self.pending = rest;
        shown
    }

    /// The rest, redacted, once the output has ended.
    pub fn finish(&mut self) -> Vec<u8> {
        let shown = self.redactor.redact_bytes(&self.pending);
        self.pending.clear();
        shown
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::*;

    #[test]
    fn redacts_encoded_forms() {
        let s = Secret::new("hunter2/with space");
        let r = Redactor::new([&s]);
        assert_eq!(r.redact("a hunter2/with space b"), "a *** b");
        assert_eq!(r.redact("u=hunter2%2Fwith%20space"), "u=***");
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2/with space");
        assert_eq!(r.redact(&b64), "***");
        assert_eq!(format!("{s:?}"), "Secret(***)");
    }

    #[test]
    fn redacts_every_form_in_one_text() {
        let s = Secret::new("a b+c/d'<x>\"");
        let r = Redactor::new([&s]);
        let text = [
            "a b+c/d'<x>\"".to_string(),
            "a%20b%2Bc%2Fd%27%3Cx%3E%22".to_string(),
            "a+b%2Bc%2Fd%27%3Cx%3E%22".to_string(),
            base64::engine::general_purpose::STANDARD.encode("a b+c/d'<x>\""),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("a b+c/d'<x>\""),
            crate::template::shell_quote("a b+c/d'<x>\""),
            r#"a b+c/d'<x>\""#.to_string(),
            r#"a b+c/d\u0027\u003cx\u003e\""#.to_string(),
        ]
        .join(" | ");
        assert_eq!(r.redact(&text), ["***"; 8].join(" | "));
    }

    #[test]
    fn overlapping_secrets_leave_no_tail() {
        let a = Secret::new("abcdef12");
        let b = Secret::new("ef12ghij");
        let r = Redactor::new([&a, &b]);
        assert_eq!(r.redact("x abcdef12ghij y"), "x *** y");
        assert_eq!(r.redact("x ef12ghij abcdef12 y"), "x *** *** y");
        // A chain of overlaps is one span, however it is entered.
        assert_eq!(r.redact("abcdef12ghij abcdef12ghij"), "*** ***");
    }

    #[test]
    fn a_secret_that_is_a_prefix_of_another_hides_the_longer_whole() {
        let short = Secret::new("token1234");
        let long = Secret::new("token1234567");
        for r in [
            Redactor::new([&short, &long]),
            Redactor::new([&long, &short]),
        ] {
            assert_eq!(r.redact("a token1234567 b"), "a *** b");
            assert_eq!(r.redact("a token1234 b"), "a *** b");
            assert_eq!(r.redact("token1234token1234567"), "******");
        }
    }

    #[test]
    fn unicode_short_and_absent_secrets() {
        let s = Secret::new("pässwörd");
        let r = Redactor::new([&s, &Secret::new("abc")]);
        assert_eq!(r.redact("é pässwörd ü abc"), "é *** ü abc");
        assert_eq!(r.redact("nothing here"), "nothing here");
        let none = Redactor::new([&Secret::new("abc")]);
        assert!(none.is_empty());
        assert_eq!(none.redact("abc"), "abc");
        assert!(Redactor::default().is_empty());
    }

    #[test]
    fn base64_inside_longer_text_and_hex_are_masked() {
        use base64::engine::general_purpose::STANDARD;
        let r = Redactor::new([&Secret::new("s3cr3t-v4lue-xyz")]);
        for user in ["", "a", "ab", "deploy", "x-access-token"] {
            let basic = STANDARD.encode(format!("{user}:s3cr3t-v4lue-xyz"));
            let shown = r.redact(&format!("Authorization: Basic {basic}"));
            assert!(shown.ends_with("***"), "{user}: {shown}");
            assert!(!shown.contains(&basic[basic.len() - 8..]), "{shown}");
        }
        assert_eq!(r.redact("h=7333637233742d76346c75652d78797a"), "h=***");
        assert_eq!(r.redact("H=7333637233742D76346C75652D78797A"), "H=***");
    }

    #[test]
    fn a_stream_never_shows_part_of_a_secret_wherever_it_is_split() {
        let pem = "-----BEGIN KEY-----\nMIIEvQIBADANBgkq\n-----END KEY-----";
        let r = Redactor::new([&Secret::new("s3cr3t-v4lue-xyz"), &Secret::new(pem)]);
        let text = format!("a s3cr3t-v4lue-xyz b\n{pem}\nc s3cr3t-v4lue-xyz");
        let whole = r.redact(&text);
        for cut in 0..=text.len() {
            for cut2 in [cut, (cut + 7).min(text.len())] {
                let mut stream = r.stream();
                let mut shown = stream.push(&text.as_bytes()[..cut]);
                shown.extend(stream.push(&text.as_bytes()[cut..cut2]));
                shown.extend(stream.push(&text.as_bytes()[cut2..]));
                shown.extend(stream.finish());
                assert_eq!(
                    String::from_utf8_lossy(&shown),
                    whole,
                    "cut at {cut}, {cut2}"
                );
            }
        }
        assert_eq!(whole, "a *** b\n***\nc ***");
    }

    #[test]
    fn a_cut_never_ends_inside_a_secret() {
        let r = Redactor::new([&Secret::new("s3cr3t-v4lue-xyz")]);
        let text = b"xxxx s3cr3t-v4lue-xyz yyyy";
        assert_eq!(r.safe_cut(text, 8), 5);
        assert_eq!(r.safe_cut(text, 5), 5);
        assert_eq!(r.safe_cut(text, 21), 21);
        assert_eq!(Redactor::default().safe_cut(text, 8), 8);
    }
}
