//! Label matchers (Alertmanager syntax) and choosing the playbook for an incident.
//!
//! Matchers are parsed once at load time; regexes are fully anchored, as in
//! Alertmanager, and a label the incident does not have equals the empty string.

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
}

impl Candidate for crate::playbook::Playbook {
    fn name(&self) -> &str {
        &self.name
    }
    fn priority(&self) -> i64 {
        self.raw.priority
    }
    fn owner(&self) -> Option<&str> {
        self.raw.owner.as_deref()
    }
    fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }
    fn when(&self) -> Option<&str> {
        self.raw
            .match_
            .as_ref()
            .and_then(|m| m.when.as_ref())
            .map(|w| w.value.as_str())
    }
}

/// The outcome of testing one playbook against an incident.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Evaluation {
    /// Index into the playbook list that was evaluated.
    #[serde(skip)]
    pub index: usize,
    /// The playbook's name.
    pub name: String,
    /// Its priority.
    pub priority: i64,
    /// Its owner.
    pub owner: Option<String>,
    /// Whether every condition held.
    pub matched: bool,
    /// For a playbook that did not match: the first condition that failed, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Every playbook's evaluation and the winners.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Selection {
    /// Matched playbooks first (highest priority first), then the rest by name.
    pub evaluations: Vec<Evaluation>,
    /// Names of the matched playbooks sharing the highest priority; more than one is a tie.
    pub winners: Vec<String>,
}

impl Selection {
    /// The single winner, when there is exactly one.
    pub fn winner(&self) -> Option<&str> {
        match self.winners.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// The first condition of a playbook that fails for an incident.
enum Mismatch<'a> {
    /// A label matcher that does not hold.
    Matcher(&'a Matcher),
    /// `match.when` was false, or could not be evaluated.
    When {
        expr: &'a str,
        error: Option<crate::template::RenderError>,
    },
}

/// The one evaluation of a playbook against an incident; `None` means it matches.
/// Matchers come first: they are cheap, and most playbooks fail on one.
fn first_mismatch<'a, P: Candidate + ?Sized>(
    playbook: &'a P,
    labels: &BTreeMap<String, String>,
    incident: &minijinja::Value,
) -> Option<Mismatch<'a>> {
    if let Some(m) = playbook.matchers().iter().find(|m| !m.matches(labels)) {
        return Some(Mismatch::Matcher(m));
    }
    let when = playbook.when()?;
    let ctx = minijinja::context! { incident => incident.clone() };
    match crate::template::eval_bool(when, &ctx) {
        Ok(true) => None,
        Ok(false) => Some(Mismatch::When {
            expr: when,
            error: None,
        }),
        Err(e) => Some(Mismatch::When {
            expr: when,
            error: Some(e),
        }),
    }
}

/// Why `playbook` does not match, or `None` when it does.
pub fn explain<P: Candidate + ?Sized>(
    playbook: &P,
    labels: &BTreeMap<String, String>,
    incident: &minijinja::Value,
) -> Option<String> {
    Some(match first_mismatch(playbook, labels, incident)? {
        Mismatch::Matcher(m) => {
            let has = match labels.get(&m.name) {
                Some(v) => format!(
                    "incident has {}={}",
                    m.name,
                    serde_json::Value::String(v.clone())
                ),
                None => format!("incident has no `{}` label", m.name),
            };
            format!("{m} \u{2014} {has}")
        }
        Mismatch::When { expr, error: None } => format!("when `{}` was false", expr.trim()),
        Mismatch::When {
            expr,
            error: Some(e),
        } => format!("when `{}` failed: {e}", expr.trim()),
    })
}

/// The rule both `run` and `validate` apply: of the matching playbooks, the
/// ones sharing the highest priority win, in the order given.
fn highest_priority<'a>(matched: impl IntoIterator<Item = (i64, &'a str)>) -> Vec<&'a str> {
    let mut top: Option<i64> = None;
    let mut winners = Vec::new();
    for (priority, name) in matched {
        match top {
            Some(t) if priority < t => {}
            Some(t) if priority == t => winners.push(name),
            _ => {
                top = Some(priority);
                winners = vec![name];
            }
        }
    }
    winners
}

/// Evaluates every playbook against `incident` and picks the highest-priority matches.
pub fn select<P: Candidate>(playbooks: &[P], incident: &crate::incident::Incident) -> Selection {
    let labels = incident.match_labels();
    let value = crate::template::value(incident.to_template_value());
    let mut evaluations: Vec<Evaluation> = playbooks
        .iter()
        .enumerate()
        .map(|(index, p)| {
            let reason = explain(p, &labels, &value);
            Evaluation {
                index,
                name: p.name().to_string(),
                priority: p.priority(),
                owner: p.owner().map(str::to_string),
                matched: reason.is_none(),
                reason,
            }
        })
        .collect();
    evaluations.sort_by(|a, b| {
        b.matched
            .cmp(&a.matched)
            .then(if a.matched {
                b.priority.cmp(&a.priority)
            } else {
                std::cmp::Ordering::Equal
            })
            .then_with(|| a.name.cmp(&b.name))
    });
    let winners = highest_priority(
        evaluations
            .iter()
            .filter(|e| e.matched)
            .map(|e| (e.priority, e.name.as_str())),
    )
    .into_iter()
    .map(str::to_string)
    .collect();
    Selection {
        evaluations,
        winners,
    }
}

/// Checks every drill incident in the set: a playbook whose own drill does
/// not select it (`never-matches`), and drills that several playbooks tie for
/// at the top priority (`ambiguous-match`), which `irctl run` would refuse.
pub fn check_drills(playbooks: &[crate::playbook::Playbook]) -> Vec<crate::diagnostic::Diagnostic> {
    use crate::diagnostic::Diagnostic;
    let mut diags = Vec::new();
    for p in playbooks {
        let (Some(drill), Some(raw)) = (&p.drill, &p.raw.drill) else {
            continue;
        };
        let incident = &drill.incident;
        let labels = incident.match_labels();
        let value = crate::template::value(incident.to_template_value());
        if let Some(why) = explain(p, &labels, &value) {
            diags.push(
                Diagnostic::warning(
                    p.file(),
                    raw.incident.pos,
                    "never-matches",
                    format!("the drill incident of `{}` does not match it: {why}", p.name),
                )
                .with_help("fix `match` or the drill's incident, or the drill exercises a playbook no real alert would select"),
            );
            continue;
        }
        let winners = highest_priority(
            playbooks
                .iter()
                .filter(|q| first_mismatch(*q, &labels, &value).is_none())
                .map(|q| (q.raw.priority, q.name.as_str())),
        );
        if winners.len() > 1 {
            diags.push(
                Diagnostic::warning(
                    p.file(),
                    raw.incident.pos,
                    "ambiguous-match",
                    format!(
                        "the drill incident of `{}` matches {} at the same priority: {}",
                        p.name,
                        winners.len(),
                        winners.join(", ")
                    ),
                )
                .with_help("give one of them a higher `priority` or narrower `match`, so `irctl run` can choose"),
            );
        }
    }
    diags
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
