//! Typed access to payload fields with errors that name the field's path.
//!
//! Payloads are read as `serde_json::Value` so detection can look before it
//! commits to a format; these helpers turn "wrong type at `alerts[2].labels`"
//! into an [`IncidentError`] naming the origin, the format and the path. A
//! [`Ctx`] carries a path prefix so a payload nested in a CloudEvent reports
//! `data.alerts[0]`.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use serde_json::{Map, Value};

use super::{IncidentError, IncidentFormat, Status, shown, timestamp};

/// A JSON object.
pub(super) type Object = Map<String, Value>;

/// Where a value comes from: origin, format being read, and path prefix.
pub(super) struct Ctx<'a> {
    pub(super) origin: &'a str,
    pub(super) format: IncidentFormat,
    prefix: String,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(origin: &'a str, format: IncidentFormat) -> Self {
        Ctx {
            origin,
            format,
            prefix: String::new(),
        }
    }

    /// A context for a payload of `format` nested under `prefix` (e.g. `data.`).
    pub(super) fn nested(&self, format: IncidentFormat, prefix: &str) -> Ctx<'a> {
        Ctx {
            origin: self.origin,
            format,
            prefix: format!("{}{prefix}", self.prefix),
        }
    }

    /// `field` with this context's prefix, as messages show it.
    pub(super) fn path(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    pub(super) fn missing(&self, field: &str) -> IncidentError {
        IncidentError::MissingField {
            origin: self.origin.to_string(),
            format: self.format,
            field: self.path(field),
        }
    }

    pub(super) fn wrong_type(
        &self,
        field: &str,
        expected: &'static str,
        found: &Value,
    ) -> IncidentError {
        IncidentError::WrongType {
            origin: self.origin.to_string(),
            format: self.format,
            field: self.path(field),
            expected,
            found: describe(found),
        }
    }

    pub(super) fn invalid_value(&self, field: &str, value: &str, expected: &str) -> IncidentError {
        IncidentError::InvalidValue {
            origin: self.origin.to_string(),
            format: self.format,
            field: self.path(field),
            value: shown(value),
            expected: expected.to_string(),
        }
    }

    pub(super) fn unsupported(&self, message: String) -> IncidentError {
        IncidentError::Unsupported {
            origin: self.origin.to_string(),
            format: self.format,
            message,
        }
    }

    /// An optional object; absent and `null` are `None`.
    pub(super) fn object<'v>(
        &self,
        v: Option<&'v Value>,
        field: &str,
    ) -> Result<Option<&'v Object>, IncidentError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => Ok(Some(m)),
            Some(other) => Err(self.wrong_type(field, "an object", other)),
        }
    }

    /// An optional array; absent and `null` are `None`.
    pub(super) fn array<'v>(
        &self,
        v: Option<&'v Value>,
        field: &str,
    ) -> Result<Option<&'v Vec<Value>>, IncidentError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(other) => Err(self.wrong_type(field, "an array", other)),
        }
    }

    /// An optional string; absent and `null` are `None`.
    pub(super) fn string<'v>(
        &self,
        v: Option<&'v Value>,
        field: &str,
    ) -> Result<Option<&'v str>, IncidentError> {
        match v {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(field, "a string", other)),
        }
    }

    /// A required, non-empty string.
    pub(super) fn required_string<'v>(
        &self,
        v: Option<&'v Value>,
        field: &str,
    ) -> Result<&'v str, IncidentError> {
        match self.string(v, field)? {
            None => Err(self.missing(field)),
            Some(s) if s.trim().is_empty() => {
                Err(self.invalid_value(field, s, "a non-empty string"))
            }
            Some(s) => Ok(s),
        }
    }

    /// An optional string where empty also means absent (Grafana sends `""`
    /// for links it does not have).
    pub(super) fn text(
        &self,
        v: Option<&Value>,
        field: &str,
    ) -> Result<Option<String>, IncidentError> {
        Ok(self
            .string(v, field)?
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string))
    }

    /// A label or annotation set: an object whose values are strings, or
    /// numbers and booleans (stringified). `null` values are left out, as
    /// Prometheus treats an empty label as absent; nested values are errors.
    pub(super) fn string_map(
        &self,
        v: Option<&Value>,
        field: &str,
    ) -> Result<BTreeMap<String, String>, IncidentError> {
        let Some(obj) = self.object(v, field)? else {
            return Ok(BTreeMap::new());
        };
        let here = self.path(field);
        super::limit::entries(self.origin, &here, obj.len())?;
        let mut out = BTreeMap::new();
        for (key, value) in obj {
            if value.is_null() {
                continue;
            }
            let text = scalar_string(value).ok_or_else(|| {
                self.wrong_type(
                    &format!("{field}.{key}"),
                    "a string, number or boolean",
                    value,
                )
            })?;
            super::limit::entry(self.origin, &here, key, &text)?;
            out.insert(key.clone(), text);
        }
        Ok(out)
    }

    /// An optional timestamp; empty strings and Go's zero time
    /// (`0001-01-01T00:00:00Z`, Alertmanager's "not ended") are `None`.
    pub(super) fn time(
        &self,
        v: Option<&Value>,
        field: &str,
    ) -> Result<Option<DateTime<Utc>>, IncidentError> {
        match self.string(v, field)? {
            None => Ok(None),
            Some(s) => self.time_str(s, field),
        }
    }

    /// [`Ctx::time`] for a string already in hand.
    pub(super) fn time_str(
        &self,
        s: &str,
        field: &str,
    ) -> Result<Option<DateTime<Utc>>, IncidentError> {
        if s.trim().is_empty() {
            return Ok(None);
        }
        match timestamp::parse(s) {
            Some(t) if t.year() <= 1 => Ok(None),
            Some(t) => Ok(Some(t)),
            None => Err(IncidentError::Timestamp {
                origin: self.origin.to_string(),
                field: self.path(field),
                value: shown(s),
            }),
        }
    }

    /// `firing` or `resolved`, any case.
    pub(super) fn status(&self, s: &str, field: &str) -> Result<Status, IncidentError> {
        if s.eq_ignore_ascii_case("firing") {
            Ok(Status::Firing)
        } else if s.eq_ignore_ascii_case("resolved") {
            Ok(Status::Resolved)
        } else {
            Err(self.invalid_value(field, s, "`firing` or `resolved`"))
        }
    }
}

/// "an array", "a number", … for messages.
pub(super) fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Strings as they are; numbers and booleans as their JSON text; else `None`.
pub(super) fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}
