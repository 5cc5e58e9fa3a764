//! Label matchers (Alertmanager syntax), part of the compiled playbook
//! format, and [`Candidate`]: what choosing a playbook needs to know of one.
//!
//! Matchers are parsed once at load time; regexes are fully anchored, as in
//! Alertmanager, and a label the incident does not have equals the empty string.
//! Choosing among playbooks is [`crate::matching`]'s job, built on these.

use std::collections::BTreeMap;
use std::fmt;

use regex::Regex;

use crate::memo::Memo;

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~`
    Regex,
    /// `!~`
    NotRegex,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

/// A parsed `name<op>"value"` matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// The label name.
    pub name: String,
    /// The comparison.
    pub op: MatchOp,
    /// The value or pattern as written (unquoted).
    pub value: String,
    regex: Option<Regex>,
}

/// Why a matcher could not be parsed; `Regex` is reported as `invalid-regex`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatcherError {
    /// The text is not `name op "value"`.
    Syntax(String),
    /// The pattern does not compile.
    Regex(String),
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.name,
            self.op.as_str(),
            serde_json::Value::String(self.value.clone())
        )
    }
}

fn is_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Matcher {
    /// Parses `name="value"`, `name!="value"`, `name=~"re"` or `name!~"re"`.
    /// The value may be double-quoted (with `\"` and `\\` escapes) or bare.
    pub fn parse(text: &str) -> Result<Matcher, MatcherError> {
        let t = text.trim();
        let op_at = t.find(['=', '!', '~']).ok_or_else(|| {
            MatcherError::Syntax(format!(
                "`{text}` is not a matcher; expected `name=\"value\"`, `name!=\"value\"`, `name=~\"regex\"` or `name!~\"regex\"`"
            ))
        })?;
        let name = t[..op_at].trim();
        let rest = &t[op_at..];
        let (op, after) = if let Some(r) = rest.strip_prefix("=~") {
            (MatchOp::Regex, r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, r)
        } else if let Some(r) = rest.strip_prefix('=') {
            (MatchOp::Equal, r)
        } else {
            return Err(MatcherError::Syntax(format!(
                "`{text}` has no valid operator; use `=`, `!=`, `=~` or `!~`"
            )));
        };
        if !is_label_name(name) {
            return Err(MatcherError::Syntax(format!(
                "`{name}` is not a valid label name in `{text}` (letters, digits and `_`, not starting with a digit)"
            )));
        }
        let value =
            unquote(after.trim()).map_err(|e| MatcherError::Syntax(format!("{e} in `{text}`")))?;
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(compile(&value)?),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_string(),
            op,
            value,
            regex,
        })
    }

    /// Whether the matcher holds over `labels` (a missing label is "").
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let actual = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(re)) => re.is_match(actual),
            (MatchOp::NotRegex, Some(re)) => !re.is_match(actual),
            (_, None) => false,
        }
    }
}

/// Compiles an anchored matcher regex, once per distinct pattern per process:
/// repos repeat the same few patterns (`severity=~"critical|warning"`) across
/// thousands of playbooks, and compiling is most of the cost of a matcher.
fn compile(value: &str) -> Result<Regex, MatcherError> {
    static REGEXES: Memo<Result<Regex, String>> = Memo::new();
    REGEXES
        .get_or(value, || {
            Regex::new(&format!("^(?:{value})$"))
                .map_err(|e| format!("invalid regex `{value}`: {}", first_line(&e.to_string())))
        })
        .map_err(MatcherError::Regex)
}

/// The regex crate's message without its source excerpt and `error:` prefix.
fn first_line(s: &str) -> String {
    let last = s.lines().last().unwrap_or(s).trim();
    last.strip_prefix("error:")
        .unwrap_or(last)
        .trim()
        .to_string()
}

fn unquote(s: &str) -> Result<String, String> {
    let Some(inner) = s.strip_prefix('"') else {
        if s.contains(['"', ',', '{', '}']) {
            return Err(format!("unexpected character in unquoted value `{s}`"));
        }
        return Ok(s.to_string());
    };
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some(c @ ('"' | '\\')) => out.push(c),
                Some(c) => {
                    // Regexes need their backslashes: keep unknown escapes verbatim.
                    out.push('\\');
                    out.push(c);
                }
                None => return Err("unterminated escape".into()),
            },
            '"' => {
                let trailing: String = chars.collect();
                if !trailing.trim().is_empty() {
                    return Err(format!(
                        "unexpected `{}` after the closing quote",
                        trailing.trim()
                    ));
                }
                return Ok(out);
            }
            c => out.push(c),
        }
    }
    Err("missing closing `\"`".into())
}

/// What matching needs to know of a playbook: a fully loaded one, or the
/// cached summary `irctl match` and `irctl run` use to avoid parsing every file.
pub trait Candidate {
    /// The playbook's name.
    fn name(&self) -> &str;
    /// Its `priority`.
    fn priority(&self) -> i64;
    /// Its `owner`.
    fn owner(&self) -> Option<&str>;
    /// Its parsed `match.labels`.
    fn matchers(&self) -> &[Matcher];
    /// Its `match.when` expression.
    fn when(&self) -> Option<&str>;
    /// Its `match.per_alert`: matched against each firing alert on its own.
    fn per_alert(&self) -> bool;
    /// Whether it is `kind: routing`: it runs beside the one remediation
    /// playbook and takes no part in choosing it.
    fn routing(&self) -> bool;
}

impl Candidate for super::Playbook {
    fn name(&self) -> &str {
        &self.name
    }
    fn priority(&self) -> i64 {
        self.priority
    }
    fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }
    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }
    fn when(&self) -> Option<&str> {
        self.when.as_deref()
    }
    fn per_alert(&self) -> bool {
        self.per_alert
    }
    fn routing(&self) -> bool {
        self.kind == super::model::PlaybookKind::Routing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn regexes_are_anchored_and_missing_is_empty() {
        let m = Matcher::parse(r#"severity=~"crit""#).unwrap();
        assert!(!m.matches(&labels(&[("severity", "critical")])));
        let m = Matcher::parse(r#"team!~".+""#).unwrap();
        assert!(m.matches(&labels(&[])));
        let m = Matcher::parse(r#"env="""#).unwrap();
        assert!(m.matches(&labels(&[])));
    }

    #[test]
    fn parse_errors() {
        assert!(matches!(
            Matcher::parse("alertname"),
            Err(MatcherError::Syntax(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"a=~"(""#),
            Err(MatcherError::Regex(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"1a="x""#),
            Err(MatcherError::Syntax(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"a="x"y"#),
            Err(MatcherError::Syntax(_))
        ));
    }
}
