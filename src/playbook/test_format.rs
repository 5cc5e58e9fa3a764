//! The playbook test format, as serde types: a `tests:` list inside a
//! playbook, or the same list in a sibling `NAME.test.yaml`.
//!
//! Like the playbook model this is the raw mirror of what users write
//! (unknown fields rejected, positions kept where diagnostics point);
//! [`super::test_check`] resolves it against its playbook. Several fields take a
//! plain string as a shorthand for the common case (`restart: ok`,
//! `escalate: skipped`, `url: https://…`), which [`StrOrMap`] implements.

use std::fmt;
use std::marker::PhantomData;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::de::{self, DeserializeOwned, IntoDeserializer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::yaml::Spanned;

/// A sibling `NAME.test.yaml` file: the tests of playbook `NAME`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTestFile {
    /// The tests.
    pub tests: Vec<RawTest>,
}

/// One test: an incident, canned results per step, and what must happen.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTest {
    /// Unique among the playbook's tests; shown in reports.
    pub name: Spanned<String>,
    /// The incident (any supported payload or irctl's own); the drill's incident when unset.
    #[serde(default)]
    pub incident: Option<Spanned<serde_json::Value>>,
    /// Input values, as `--input` would give them.
    #[serde(default)]
    pub inputs: IndexMap<String, serde_json::Value>,
    /// Values for the playbook's secrets (unset ones are `test-secret-NAME`)
    /// and for team channels' secrets (unset ones are not set).
    #[serde(default)]
    pub secrets: IndexMap<String, String>,
    /// Run as a drill: `simulate_in_drill` steps are simulated, notifications tagged.
    #[serde(default)]
    pub drill: bool,
    /// Answers to `confirm` questions by step id; unlisted ones are approved.
    #[serde(default)]
    pub confirm: IndexMap<String, Spanned<bool>>,
    /// Canned results by step id: one for every attempt, or a list (one per attempt).
    #[serde(default)]
    pub results: IndexMap<String, Spanned<Canned>>,
    /// What must happen.
    #[serde(default)]
    pub expect: RawExpect,
}

/// The canned results of one step.
#[derive(Clone, Debug)]
pub struct Canned {
    /// One per attempt, in order.
    pub attempts: Vec<CannedAttempt>,
    /// Written as one value, not a list: it answers every attempt.
    pub each: bool,
}

/// What one attempt returns: `ok`, `fail`, `timeout`, or the details.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CannedAttempt {
    /// Process exit status (shell/command steps); 0 when unset.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Captured standard output.
    #[serde(default)]
    pub stdout: String,
    /// Captured standard error.
    #[serde(default)]
    pub stderr: String,
    /// HTTP status (http and notify steps); 200 when unset.
    #[serde(default)]
    pub http_status: Option<u16>,
    /// HTTP response body.
    #[serde(default)]
    pub body: Option<String>,
    /// HTTP response body given as JSON.
    #[serde(default)]
    pub json: Option<serde_json::Value>,
    /// HTTP response headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// The attempt runs past the step's timeout.
    #[serde(default)]
    pub timeout: bool,
}

impl Shorthand for CannedAttempt {
    const EXPECTING: &'static str = "`ok`, `fail`, `timeout` or a mapping";
    const WORDS: &'static [&'static str] = &["ok", "fail", "timeout"];
    fn from_word(word: &str) -> Option<Self> {
        match word {
            "ok" => Some(CannedAttempt::default()),
            "fail" => Some(CannedAttempt {
                exit_code: Some(1),
                http_status: Some(500),
                ..CannedAttempt::default()
            }),
            "timeout" => Some(CannedAttempt {
                timeout: true,
                ..CannedAttempt::default()
            }),
            _ => None,
        }
    }
}

/// Expectations about the run.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// The run's final status.
    #[serde(default)]
    pub status: Option<Spanned<ExpectedRun>>,
    /// Expectations by step id: a status, or a mapping of checks.
    #[serde(default)]
    pub steps: IndexMap<String, Spanned<StrOrMap<StepExpect>>>,
}

/// A run's final status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedRun {
    /// Every step succeeded, was skipped, or failed with `continue_on_error`.
    Succeeded,
    /// A step failed.
    Failed,
}

impl ExpectedRun {
    /// The name as written.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedRun::Succeeded => "succeeded",
            ExpectedRun::Failed => "failed",
        }
    }
}

/// A step's final status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExpectedStep {
    /// It ran and succeeded.
    Succeeded,
    /// It ran and failed (or could not start: template, `when`, declined confirm).
    Failed,
    /// Its last attempt timed out.
    TimedOut,
    /// Its trigger or `when` kept it from running.
    Skipped,
    /// A drill recorded it instead of running it.
    Simulated,
}

const STEP_STATUSES: &[&str] = &["succeeded", "failed", "timed_out", "skipped", "simulated"];

impl ExpectedStep {
    /// The name as written (and as the engine reports it).
    pub fn as_str(self) -> &'static str {
        match self {
            ExpectedStep::Succeeded => "succeeded",
            ExpectedStep::Failed => "failed",
            ExpectedStep::TimedOut => "timed_out",
            ExpectedStep::Skipped => "skipped",
            ExpectedStep::Simulated => "simulated",
        }
    }
}

/// Checks on one step; a plain string is its expected status.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepExpect {
    /// Final status.
    #[serde(default)]
    pub status: Option<ExpectedStep>,
    /// Why it was skipped or failed.
    #[serde(default)]
    pub reason: Option<StrOrMap<TextCheck>>,
    /// Attempts made.
    #[serde(default)]
    pub attempts: Option<u32>,
    /// The rendered shell script, or the argv joined by spaces.
    #[serde(default)]
    pub command: Option<StrOrMap<TextCheck>>,
    /// The rendered HTTP request (http steps, and notify steps that POST).
    #[serde(default)]
    pub request: Option<RequestExpect>,
    /// The rendered notification text.
    #[serde(default)]
    pub notification: Option<StrOrMap<TextCheck>>,
    /// The teams a `notify: { team }` step sent its message to (exactly these, in any order).
    #[serde(default)]
    pub teams: Option<Vec<Spanned<String>>>,
    /// The channels it went on, as `kind:SECRET_NAME` (exactly these, in any order).
    #[serde(default)]
    pub channels: Option<Vec<Spanned<String>>>,
}

impl Shorthand for StepExpect {
    const EXPECTING: &'static str = "a step status or a mapping of checks";
    const WORDS: &'static [&'static str] = STEP_STATUSES;
    fn from_word(word: &str) -> Option<Self> {
        // The words are `ExpectedStep`'s own serde names.
        let word: de::value::StrDeserializer<'_, de::value::Error> = word.into_deserializer();
        let status = ExpectedStep::deserialize(word).ok()?;
        Some(StepExpect {
            status: Some(status),
            ..StepExpect::default()
        })
    }
}

/// Checks on a rendered request.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestExpect {
    /// The method (`POST`).
    #[serde(default)]
    pub method: Option<StrOrMap<TextCheck>>,
    /// The URL with its query.
    #[serde(default)]
    pub url: Option<StrOrMap<TextCheck>>,
    /// The body as sent.
    #[serde(default)]
    pub body: Option<StrOrMap<TextCheck>>,
    /// Header values by name (case-insensitive).
    #[serde(default)]
    pub headers: IndexMap<String, StrOrMap<TextCheck>>,
}

/// A check on rendered text; a plain string must equal it. All given checks must hold.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TextCheck {
    /// The whole text, exactly (surrounding whitespace ignored).
    #[serde(default)]
    pub equals: Option<String>,
    /// A part of the text.
    #[serde(default)]
    pub contains: Option<String>,
    /// A regular expression that must match somewhere in the text.
    #[serde(default)]
    pub regex: Option<Spanned<String>>,
}

impl Shorthand for TextCheck {
    const EXPECTING: &'static str = "a string or a mapping with `equals`, `contains`, `regex`";
    const WORDS: &'static [&'static str] = &[];
    fn from_word(word: &str) -> Option<Self> {
        Some(TextCheck {
            equals: Some(word.to_string()),
            ..TextCheck::default()
        })
    }
}

/// A type that may be written as one plain word instead of a mapping.
pub trait Shorthand: Sized + DeserializeOwned {
    /// What the error message says was expected.
    const EXPECTING: &'static str;
    /// The words accepted (for the error message); empty when any string is.
    const WORDS: &'static [&'static str];
    /// The value a word stands for.
    fn from_word(word: &str) -> Option<Self>;
}

/// `T`, written as a mapping or as a [`Shorthand`] word.
#[derive(Clone, Debug, Default)]
pub struct StrOrMap<T>(pub T);

impl<T> std::ops::Deref for StrOrMap<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

struct StrOrMapVisitor<T>(PhantomData<T>);

impl<'de, T: Shorthand> de::Visitor<'de> for StrOrMapVisitor<T> {
    type Value = StrOrMap<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        T::from_word(v)
            .map(StrOrMap)
            .ok_or_else(|| E::unknown_variant(v, T::WORDS))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map)).map(StrOrMap)
    }
}

impl<'de, T: Shorthand> Deserialize<'de> for StrOrMap<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrOrMapVisitor(PhantomData))
    }
}

impl<T: Serialize> Serialize for StrOrMap<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<T: JsonSchema> JsonSchema for StrOrMap<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("{}OrWord", T::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let inner = generator.subschema_for::<T>();
        schemars::json_schema!({ "anyOf": [ { "type": "string" }, inner ] })
    }
}

struct CannedVisitor;

impl<'de> de::Visitor<'de> for CannedVisitor {
    type Value = Canned;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`ok`, `fail`, `timeout`, a mapping, or a list of them (one per attempt)")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        let one: StrOrMap<CannedAttempt> = Deserialize::deserialize(v.into_deserializer())?;
        Ok(Canned {
            attempts: vec![one.0],
            each: true,
        })
    }
    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let one = CannedAttempt::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(Canned {
            attempts: vec![one],
            each: true,
        })
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(one) = seq.next_element::<StrOrMap<CannedAttempt>>()? {
            out.push(one.0);
        }
        if out.is_empty() {
            return Err(de::Error::invalid_length(0, &"at least one attempt"));
        }
        Ok(Canned {
            attempts: out,
            each: false,
        })
    }
}

impl<'de> Deserialize<'de> for Canned {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CannedVisitor)
    }
}

impl Serialize for Canned {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.each && self.attempts.len() == 1 {
            self.attempts[0].serialize(serializer)
        } else {
            self.attempts.serialize(serializer)
        }
    }
}

impl JsonSchema for Canned {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CannedResults".into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let one = generator.subschema_for::<StrOrMap<CannedAttempt>>();
        schemars::json_schema!({
            "description": "One result for every attempt, or a list with one per attempt.",
            "anyOf": [ one.clone(), { "type": "array", "items": one, "minItems": 1 } ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_and_mappings_parse_alike() {
        let file: RawTestFile = crate::yaml::from_str(
            "tests:\n  - name: t\n    results:\n      a: ok\n      b: [fail, timeout, { exit_code: 3 }]\n    expect:\n      steps:\n        a: skipped\n        b: { status: failed, command: echo hi, reason: { contains: x } }\n",
        )
        .unwrap();
        let t = &file.tests[0];
        let a = &t.results["a"].value;
        assert!(a.each);
        assert_eq!(a.attempts[0].exit_code, None);
        let b = &t.results["b"].value;
        assert!(!b.each);
        assert_eq!(b.attempts[0].exit_code, Some(1));
        assert!(b.attempts[1].timeout);
        assert_eq!(b.attempts[2].exit_code, Some(3));
        assert_eq!(
            t.expect.steps["a"].value.status,
            Some(ExpectedStep::Skipped)
        );
        let e = &t.expect.steps["b"].value;
        assert_eq!(e.status, Some(ExpectedStep::Failed));
        assert_eq!(
            e.command.as_ref().unwrap().equals.as_deref(),
            Some("echo hi")
        );
        assert_eq!(e.reason.as_ref().unwrap().contains.as_deref(), Some("x"));
    }

    #[test]
    fn every_step_status_word_is_a_shorthand() {
        for word in STEP_STATUSES {
            let status = StepExpect::from_word(word).and_then(|e| e.status);
            assert_eq!(status.map(ExpectedStep::as_str), Some(*word));
        }
        assert!(StepExpect::from_word("done").is_none());
    }

    #[test]
    fn an_unknown_word_names_the_accepted_ones() {
        let err = crate::yaml::from_str::<RawTestFile>(
            "tests:\n  - name: t\n    results:\n      a: done\n",
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "unknown value `done`, expected one of `ok`, `fail`, `timeout`"
        );
        assert_eq!((err.pos.line, err.pos.column), (4, 7));
    }
}
