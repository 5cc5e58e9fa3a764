//! Why an incident could not be read: one error type whose every message
//! names the payload's origin, and where it can, the field and the rule.

use super::{IncidentFormat, MAX_INCIDENT_BYTES};
use crate::yaml::Pos;

/// Why an incident could not be read. Every message names the origin.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// The file or stdin could not be read.
    // The I/O error is part of the message, not a `source`, so printers
    // that walk the cause chain do not say it twice.
    #[error("cannot read incident `{origin}`: {error}")]
    Io {
        /// File path or `<stdin>`.
        origin: String,
        /// The underlying I/O error.
        error: std::io::Error,
    },
    /// The payload exceeds [`MAX_INCIDENT_BYTES`].
    #[error(
        "incident `{origin}` is larger than the {} MiB limit ({MAX_INCIDENT_BYTES} bytes)",
        MAX_INCIDENT_BYTES / (1024 * 1024)
    )]
    TooLarge {
        /// File path or `<stdin>`.
        origin: String,
    },
    /// The payload is not UTF-8.
    #[error("incident `{origin}` is not valid UTF-8 (first invalid byte at offset {offset})")]
    NotUtf8 {
        /// File path or `<stdin>`.
        origin: String,
        /// Byte offset of the first invalid byte.
        offset: usize,
    },
    /// The payload is empty or only whitespace.
    #[error("incident `{origin}` is empty")]
    Empty {
        /// File path or `<stdin>`.
        origin: String,
    },
    /// Not well-formed JSON or YAML.
    #[error("invalid {syntax} in `{origin}`{}: {message}", at(*.pos))]
    Syntax {
        /// File path or `<stdin>`.
        origin: String,
        /// `JSON` or `YAML`.
        syntax: &'static str,
        /// Where the parser stopped.
        pos: Pos,
        /// The parser's description, without position.
        message: String,
    },
    /// Detection found no known format: every format and mapping tried, and why each did not fit.
    #[error(
        "could not recognise the incident format of `{origin}`; tried:\n{}",
        .tried.iter().map(|t| format!("  - {t}")).collect::<Vec<_>>().join("\n")
    )]
    UnrecognisedFormat {
        /// File path or `<stdin>`.
        origin: String,
        /// One line per format or mapping: its name and why it did not fit.
        tried: Vec<String>,
    },
    /// `--incident-format` named no known format or mapping.
    #[error("unknown incident format `{name}`; supported: {supported}")]
    UnknownFormatName {
        /// The name as given.
        name: String,
        /// The built-in formats and the mappings there are.
        supported: String,
    },
    /// A forced format does not fit the payload.
    #[error("`{origin}` does not match incident format `{format}`: {}", .format.requirement())]
    FormatMismatch {
        /// File path or `<stdin>`.
        origin: String,
        /// The forced format.
        format: IncidentFormat,
    },
    /// A required field is absent.
    #[error("missing required field `{field}` in {format} payload `{origin}`")]
    MissingField {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the field, e.g. `alerts[0].labels`.
        field: String,
    },
    /// A field has the wrong JSON type.
    #[error("invalid {format} payload `{origin}`: `{field}` must be {expected}, found {found}")]
    WrongType {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the field.
        field: String,
        /// What the format requires.
        expected: &'static str,
        /// What the payload has.
        found: &'static str,
    },
    /// A field has a value the format does not allow.
    #[error("invalid {format} payload `{origin}`: `{field}` is `{value}`, expected {expected}")]
    InvalidValue {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the field.
        field: String,
        /// The value, escaped and shortened for display.
        value: String,
        /// What the format allows.
        expected: String,
    },
    /// A timestamp that the lenient parser could not read.
    #[error(
        "invalid timestamp in `{origin}`: `{field}` is `{value}`, expected RFC 3339 such as `2024-01-01T10:00:00Z`"
    )]
    Timestamp {
        /// File path or `<stdin>`.
        origin: String,
        /// Path of the field.
        field: String,
        /// The value, escaped and shortened for display.
        value: String,
    },
    /// An alert group with no alerts.
    #[error("{format} payload `{origin}` has no alerts; `{field}` needs at least one entry")]
    NoAlerts {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Path of the alerts array.
        field: String,
    },
    /// The payload does not fit the format's schema (irctl files: unknown
    /// field, wrong type), with a position when the text is known.
    #[error("invalid {format} payload `{origin}`{}: {message}", at(*.pos))]
    Schema {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Where, or [`Pos::UNKNOWN`].
        pos: Pos,
        /// What is wrong.
        message: String,
    },
    /// A forced mapping's `detect` conditions do not hold.
    #[error("`{origin}` does not match incident format `{name}` (`{file}`): {why}")]
    MappingMismatch {
        /// File path or `<stdin>`.
        origin: String,
        /// The mapping's name.
        name: String,
        /// The mapping's file.
        file: String,
        /// The first condition that failed.
        why: String,
    },
    /// A mapping recognised the payload, but one of its expressions failed.
    #[error("incident `{origin}` (format `{name}`, `{file}`): `{field}` {message}")]
    Mapping {
        /// File path or `<stdin>`.
        origin: String,
        /// The mapping's name.
        name: String,
        /// The mapping's file.
        file: String,
        /// The field whose expression failed.
        field: String,
        /// Why.
        message: String,
    },
    /// A payload beyond one of the documented bounds ([`limit`]).
    #[error("incident `{origin}` is too large: `{field}` {what}")]
    Limit {
        /// File path or `<stdin>`.
        origin: String,
        /// Path of the field beyond the limit.
        field: String,
        /// Which limit, and by how much.
        what: String,
    },
    /// A well-formed payload of a kind irctl does not respond to.
    #[error("unsupported {format} payload `{origin}`: {message}")]
    Unsupported {
        /// File path or `<stdin>`.
        origin: String,
        /// The format being read.
        format: IncidentFormat,
        /// Why.
        message: String,
    },
}

pub(super) fn at(pos: Pos) -> String {
    if pos.line > 0 {
        format!(" at line {} column {}", pos.line, pos.column)
    } else {
        String::new()
    }
}

pub(crate) fn supported() -> String {
    IncidentFormat::ALL
        .iter()
        .map(|f| f.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
