//! Bounds on what one payload may put into an incident.
//!
//! Labels, annotations and alerts are copied into matching, templates, the
//! timeline and postmortems, so a payload with 650,000 labels cost gigabytes
//! downstream. Real senders stay far below these numbers (Alertmanager sends
//! tens of labels per alert and, by default, every alert of a group). A
//! payload beyond any of them is refused whole, naming the limit and the
//! field, before anything is matched or run: half an alert is worse than none.

use std::collections::BTreeMap;

use super::{Incident, IncidentError, shown};

/// Most alerts in one payload (Alertmanager's `max_alerts` can cut a group to fit).
pub const MAX_ALERTS: usize = 1_000;
/// Most entries in one label or annotation set.
pub const MAX_ENTRIES: usize = 256;
/// Longest label or annotation name, in bytes.
pub const MAX_KEY_BYTES: usize = 256;
/// Longest label or annotation value (and id, title, fingerprint, URL), in bytes.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// Most JSON values (objects, arrays, strings, numbers, …) in one payload.
/// The payload is kept whole for templates (`incident.raw`) and the record,
/// so fields no parser reads must not be able to cost what labels cannot;
/// 1,000 Alertmanager alerts are about 40,000.
pub const MAX_VALUES: usize = 200_000;

/// The error for `field` of `origin` going beyond a limit: `what` says how.
pub(super) fn exceeded(origin: &str, field: &str, what: String) -> IncidentError {
    IncidentError::Limit {
        origin: origin.to_string(),
        field: field.to_string(),
        what,
    }
}

/// Checks an alert count before the alerts are read.
pub(super) fn alerts(origin: &str, field: &str, count: usize) -> Result<(), IncidentError> {
    if count > MAX_ALERTS {
        return Err(exceeded(
            origin,
            field,
            format!("has {count} alerts, more than the limit of {MAX_ALERTS}"),
        ));
    }
    Ok(())
}

/// Checks the number of entries of a label or annotation set before it is copied.
pub(super) fn entries(origin: &str, field: &str, count: usize) -> Result<(), IncidentError> {
    if count > MAX_ENTRIES {
        return Err(exceeded(
            origin,
            field,
            format!("has {count} entries, more than the limit of {MAX_ENTRIES}"),
        ));
    }
    Ok(())
}

/// Checks one entry's name and value.
pub(super) fn entry(
    origin: &str,
    field: &str,
    key: &str,
    value: &str,
) -> Result<(), IncidentError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(exceeded(
            origin,
            field,
            format!(
                "has a name of {} bytes (`{}`), more than the limit of {MAX_KEY_BYTES}",
                key.len(),
                shown(key)
            ),
        ));
    }
    text(origin, &format!("{field}.{key}"), value)
}

/// Checks one text value.
pub(super) fn text(origin: &str, field: &str, value: &str) -> Result<(), IncidentError> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(exceeded(
            origin,
            field,
            format!(
                "is {} bytes, more than the limit of {MAX_VALUE_BYTES}",
                value.len()
            ),
        ));
    }
    Ok(())
}

fn map(origin: &str, field: &str, map: &BTreeMap<String, String>) -> Result<(), IncidentError> {
    entries(origin, field, map.len())?;
    map.iter()
        .try_for_each(|(key, value)| entry(origin, field, key, value))
}

/// Checks the number of JSON values in the whole payload.
pub(super) fn values(origin: &str, payload: &serde_json::Value) -> Result<(), IncidentError> {
    let mut count = 0usize;
    let mut stack = vec![payload];
    while let Some(v) = stack.pop() {
        count += 1;
        if count > MAX_VALUES {
            return Err(exceeded(
                origin,
                "payload",
                format!("has more than {MAX_VALUES} JSON values, the limit"),
            ));
        }
        match v {
            serde_json::Value::Array(items) => stack.extend(items),
            serde_json::Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    Ok(())
}

/// Checks a finished incident, whatever format or mapping built it.
pub(super) fn check(origin: &str, incident: &Incident) -> Result<(), IncidentError> {
    alerts(origin, "alerts", incident.alerts.len())?;
    for (field, value) in [("id", Some(&incident.id)), ("title", Some(&incident.title))]
        .into_iter()
        .chain([
            ("fingerprint", incident.fingerprint.as_ref()),
            ("url", incident.url.as_ref()),
        ])
    {
        if let Some(value) = value {
            text(origin, field, value)?;
        }
    }
    map(origin, "labels", &incident.labels)?;
    map(origin, "annotations", &incident.annotations)?;
    for (i, alert) in incident.alerts.iter().enumerate() {
        map(origin, &format!("alerts[{i}].labels"), &alert.labels)?;
        map(
            origin,
            &format!("alerts[{i}].annotations"),
            &alert.annotations,
        )?;
        if let Some(fp) = &alert.fingerprint {
            text(origin, &format!("alerts[{i}].fingerprint"), fp)?;
        }
    }
    Ok(())
}
