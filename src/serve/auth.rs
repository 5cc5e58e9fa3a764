//! Who may post a delivery: checked on the raw request before anything
//! parses it.
//!
//! Every sender authenticates the way it can be configured to:
//! Alertmanager and CloudEvents routers with a bearer token or basic auth
//! (Alertmanager's `http_config.authorization` / `basic_auth`), Grafana
//! with its HMAC-SHA256 signature header (optionally over a timestamp, then
//! rejected when older than five minutes) or a token, PagerDuty V3 with
//! `X-PagerDuty-Signature: v1=…,v1=…` over the unaltered body, and the
//! generic endpoints (CloudEvents, the payload mappings' `/hooks/NAME`) also
//! with an HMAC-SHA256 of the body in a configurable header.
//!
//! Every comparison is constant-time, and every configured value is tried
//! (no early exit), so timing tells nothing about which one was close. Each
//! credential may be configured several times (`NAME`, `NAME_2` … `NAME_9`)
//! so a secret can be rotated without rejecting a sender mid-change. Values
//! come from `--secrets-file` or the environment, never from argv.

use std::path::Path;

use anyhow::Context as _;
use axum::http::HeaderMap;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::source::Source;
use crate::secret::{self, Secret};

/// Bearer tokens accepted on every hook but PagerDuty's, and on `/api`.
pub const BEARER: &str = "SERVE_BEARER_TOKEN";
/// `user:password` pairs accepted as basic auth wherever a token is.
pub const BASIC: &str = "SERVE_BASIC_AUTH";
/// Secrets of Grafana's webhook HMAC signature (`hmacConfig.secret`).
pub const GRAFANA_HMAC: &str = "SERVE_GRAFANA_HMAC_SECRET";
/// Signing secrets of PagerDuty V3 webhook subscriptions.
pub const PAGERDUTY: &str = "SERVE_PAGERDUTY_SECRET";
/// Secrets of the generic endpoints' HMAC signature (CloudEvents, mappings).
pub const HOOK_HMAC: &str = "SERVE_HOOK_HMAC_SECRET";
/// Slack app signing secrets (`/hooks/slack/interactivity`).
pub const SLACK_SIGNING: &str = "SERVE_SLACK_SIGNING_SECRET";

/// The generic endpoints' default signature header: `sha256=<hex>` or
/// `<hex>`, the HMAC-SHA256 of the raw body.
pub const HOOK_SIGNATURE_HEADER: &str = "X-Irctl-Signature";

/// Grafana's default signature header (grafana/alerting `http/hmac.go`).
pub const GRAFANA_SIGNATURE_HEADER: &str = "X-Grafana-Alerting-Signature";
/// PagerDuty's V3 signature header.
pub const PAGERDUTY_SIGNATURE_HEADER: &str = "X-PagerDuty-Signature";
/// How old (or how far in the future) a signed Grafana timestamp may be.
pub const MAX_SKEW_SECS: i64 = 300;

/// How many values of one credential may be configured at once.
const ROTATION_SLOTS: usize = 9;

/// Every secret name serve reads, for keeping them out of the runs it starts.
pub fn secret_names() -> Vec<String> {
    [
        BEARER,
        BASIC,
        GRAFANA_HMAC,
        PAGERDUTY,
        HOOK_HMAC,
        SLACK_SIGNING,
    ]
    .iter()
    .flat_map(|base| slot_names(base))
    .collect()
}

fn slot_names(base: &str) -> Vec<String> {
    std::iter::once(base.to_string())
        .chain((2..=ROTATION_SLOTS).map(|i| format!("{base}_{i}")))
        .collect()
}

/// The credentials serve accepts.
#[derive(Default)]
pub struct Credentials {
    bearer: Vec<Secret>,
    basic: Vec<Secret>,
    grafana_hmac: Vec<Secret>,
    pagerduty: Vec<Secret>,
    hook_hmac: Vec<Secret>,
    slack_signing: Vec<Secret>,
    /// The generic endpoints' signature header name.
    pub hook_signature_header: String,
    /// Grafana's signature header name.
    pub grafana_signature_header: String,
    /// Grafana's timestamp header name (`hmacConfig.timestampHeader`), when
    /// signatures must carry a fresh timestamp.
    pub grafana_timestamp_header: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("bearer", &self.bearer.len())
            .field("basic", &self.basic.len())
            .field("grafana_hmac", &self.grafana_hmac.len())
            .field("pagerduty", &self.pagerduty.len())
            .field("hook_hmac", &self.hook_hmac.len())
            .field("slack_signing", &self.slack_signing.len())
            .finish()
    }
}

impl Credentials {
    /// Reads every configured credential from `file` (dotenv) and the
    /// environment (`IRCTL_SECRET_<NAME>`, then `<NAME>`), refusing values
    /// too weak to be secrets.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Credentials> {
        let from_file = match file {
            Some(path) => {
                let text = crate::capped::read_to_string(path, secret::MAX_SECRETS_FILE_BYTES)
                    .with_context(|| format!("cannot read secrets file `{}`", path.display()))?;
                secret::parse_dotenv(&text, &path.display().to_string())?
            }
            None => Default::default(),
        };
        let read = |base: &str| -> anyhow::Result<Vec<Secret>> {
            let mut out = Vec::new();
            for name in slot_names(base) {
                let mut empty = Vec::new();
                let value = from_file
                    .get(&name)
                    .filter(|v| !v.expose().is_empty())
                    .cloned()
                    .or_else(|| crate::env::secret(&name, &mut empty).map(Secret::new));
                if let Some(value) = value {
                    if !secret::is_strong(value.expose()) {
                        anyhow::bail!(
                            "secret `{name}` is too weak: use at least {} characters that are not a common word",
                            secret::MIN_SECRET_CHARS
                        );
                    }
                    out.push(value);
                }
            }
            Ok(out)
        };
        let creds = Credentials {
            bearer: read(BEARER)?,
            basic: read(BASIC)?,
            grafana_hmac: read(GRAFANA_HMAC)?,
            pagerduty: read(PAGERDUTY)?,
            hook_hmac: read(HOOK_HMAC)?,
            slack_signing: read(SLACK_SIGNING)?,
            hook_signature_header: HOOK_SIGNATURE_HEADER.into(),
            grafana_signature_header: GRAFANA_SIGNATURE_HEADER.into(),
            grafana_timestamp_header: None,
        };
        if creds.basic.iter().any(|b| !b.expose().contains(':')) {
            anyhow::bail!("secret `{BASIC}` must be `user:password`");
        }
        Ok(creds)
    }

    /// These credentials, also accepting an HMAC signature made with one of
    /// `secrets` on the generic endpoints.
    pub fn with_hook_hmac(mut self, secrets: Vec<Secret>) -> Credentials {
        self.hook_hmac = secrets;
        self
    }

    /// These credentials, also accepting Slack requests signed with one of `secrets`.
    pub fn with_slack_signing(mut self, secrets: Vec<Secret>) -> Credentials {
        self.slack_signing = secrets;
        self
    }

    /// The Slack app signing secrets, every one accepted.
    pub fn slack_signing(&self) -> &[Secret] {
        &self.slack_signing
    }

    /// Credentials from literal values, for tests and embedding.
    pub fn new(
        bearer: Vec<Secret>,
        basic: Vec<Secret>,
        grafana_hmac: Vec<Secret>,
        pagerduty: Vec<Secret>,
    ) -> Credentials {
        Credentials {
            bearer,
            basic,
            grafana_hmac,
            pagerduty,
            hook_hmac: Vec::new(),
            slack_signing: Vec::new(),
            hook_signature_header: HOOK_SIGNATURE_HEADER.into(),
            grafana_signature_header: GRAFANA_SIGNATURE_HEADER.into(),
            grafana_timestamp_header: None,
        }
    }

    /// Whether no credential at all is configured.
    pub fn is_empty(&self) -> bool {
        self.bearer.is_empty()
            && self.basic.is_empty()
            && self.grafana_hmac.is_empty()
            && self.pagerduty.is_empty()
            && self.hook_hmac.is_empty()
    }

    /// The endpoints that have no way to authenticate, with the secret that
    /// would give them one.
    pub fn unconfigured(&self) -> Vec<(Source, &'static str)> {
        Source::ALL
            .iter()
            .filter(|s| !self.configured(s))
            .map(|s| {
                (
                    s.clone(),
                    match s {
                        Source::Pagerduty => PAGERDUTY,
                        _ => BEARER,
                    },
                )
            })
            .collect()
    }

    fn configured(&self, source: &Source) -> bool {
        let token = !self.bearer.is_empty() || !self.basic.is_empty();
        match source {
            Source::Pagerduty => !self.pagerduty.is_empty(),
            Source::Grafana => token || !self.grafana_hmac.is_empty(),
            Source::Alertmanager => token,
            Source::Cloudevents | Source::Mapping(_) => token || !self.hook_hmac.is_empty(),
        }
    }

    /// Checks a delivery to `source` (its headers and raw body) at `now`
    /// (Unix seconds).
    pub fn check(
        &self,
        source: &Source,
        headers: &HeaderMap,
        body: &[u8],
        now: i64,
    ) -> Result<(), Denied> {
        if !self.configured(source) {
            return Err(Denied::NotConfigured);
        }
        let mut verdict = Verdict::default();
        match source {
            Source::Pagerduty => verdict.add(self.pagerduty_signature(headers, body)),
            Source::Grafana => {
                if !self.grafana_hmac.is_empty() {
                    verdict.add(self.grafana_signature(headers, body, now));
                }
                verdict.add(self.token(headers));
            }
            Source::Alertmanager => verdict.add(self.token(headers)),
            Source::Cloudevents | Source::Mapping(_) => {
                if !self.hook_hmac.is_empty() {
                    verdict.add(self.hook_signature(headers, body));
                }
                verdict.add(self.token(headers));
            }
        }
        verdict.finish()
    }

    /// Checks a read request (`/api`): a bearer token or basic auth.
    pub fn check_reader(&self, headers: &HeaderMap) -> Result<(), Denied> {
        if self.bearer.is_empty() && self.basic.is_empty() {
            return Err(Denied::NotConfigured);
        }
        let mut verdict = Verdict::default();
        verdict.add(self.token(headers));
        verdict.finish()
    }

    fn token(&self, headers: &HeaderMap) -> Check {
        let Some(value) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return Check::Absent;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !self.bearer.is_empty() {
            Check::from(any_equal(&self.bearer, rest.as_bytes()))
        } else if scheme.eq_ignore_ascii_case("basic") && !self.basic.is_empty() {
            match base64::engine::general_purpose::STANDARD.decode(rest) {
                Ok(pair) => Check::from(any_equal(&self.basic, &pair)),
                Err(_) => Check::Invalid("basic credentials are not base64"),
            }
        } else {
            Check::Invalid("unsupported authorization scheme")
        }
    }

    fn grafana_signature(&self, headers: &HeaderMap, body: &[u8], now: i64) -> Check {
        let Some(signature) = header(headers, &self.grafana_signature_header) else {
            return Check::Absent;
        };
        let Ok(signature) = hex::decode(signature.trim()) else {
            return Check::Invalid("signature is not hex");
        };
        let mut prefix = Vec::new();
        if let Some(name) = &self.grafana_timestamp_header {
            let Some(stamp) = header(headers, name) else {
                return Check::Invalid("signed timestamp header missing");
            };
            let Ok(at) = stamp.trim().parse::<i64>() else {
                return Check::Invalid("signed timestamp is not Unix seconds");
            };
            if (now - at).abs() > MAX_SKEW_SECS {
                return Check::Invalid("signed timestamp is more than 5 minutes off");
            }
            prefix = format!("{}:", stamp.trim()).into_bytes();
        }
        let mut ok = false;
        for key in &self.grafana_hmac {
            let mut mac = hmac_of(key);
            mac.update(&prefix);
            mac.update(body);
            ok |= mac.verify_slice(&signature).is_ok();
        }
        Check::from(ok)
    }

    fn hook_signature(&self, headers: &HeaderMap, body: &[u8]) -> Check {
        let Some(value) = header(headers, &self.hook_signature_header) else {
            return Check::Absent;
        };
        let value = value.trim();
        let hex_sig = value.strip_prefix("sha256=").unwrap_or(value);
        let Ok(signature) = hex::decode(hex_sig) else {
            return Check::Invalid("signature is not hex");
        };
        let mut ok = false;
        for key in &self.hook_hmac {
            let mut mac = hmac_of(key);
            mac.update(body);
            ok |= mac.verify_slice(&signature).is_ok();
        }
        Check::from(ok)
    }

    fn pagerduty_signature(&self, headers: &HeaderMap, body: &[u8]) -> Check {
        let Some(value) = header(headers, PAGERDUTY_SIGNATURE_HEADER) else {
            return Check::Absent;
        };
        let given: Vec<Vec<u8>> = value
            .split(',')
            .filter_map(|s| s.trim().strip_prefix("v1="))
            .filter_map(|h| hex::decode(h).ok())
            .collect();
        let mut ok = false;
        for key in &self.pagerduty {
            let mut mac = hmac_of(key);
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            for g in &given {
                ok |= bool::from(expected.as_slice().ct_eq(g));
            }
        }
        Check::from(ok)
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn hmac_of(key: &Secret) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(key.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
}

/// Whether `given` equals any of `secrets`, comparing digests so that
/// neither content nor length leaks through timing.
fn any_equal(secrets: &[Secret], given: &[u8]) -> bool {
    let given = Sha256::digest(given);
    let mut ok = subtle::Choice::from(0);
    for s in secrets {
        ok |= Sha256::digest(s.expose().as_bytes()).ct_eq(&given);
    }
    ok.into()
}

/// What one method found in a request.
enum Check {
    Absent,
    Valid,
    Invalid(&'static str),
}

impl From<bool> for Check {
    fn from(ok: bool) -> Check {
        if ok {
            Check::Valid
        } else {
            Check::Invalid("credentials do not match")
        }
    }
}

#[derive(Default)]
struct Verdict {
    valid: bool,
    invalid: Option<&'static str>,
}

impl Verdict {
    fn add(&mut self, check: Check) {
        match check {
            Check::Absent => {}
            Check::Valid => self.valid = true,
            Check::Invalid(why) => self.invalid = self.invalid.or(Some(why)),
        }
    }

    fn finish(self) -> Result<(), Denied> {
        match (self.valid, self.invalid) {
            (true, _) => Ok(()),
            (false, Some(why)) => Err(Denied::Invalid(why)),
            (false, None) => Err(Denied::Missing),
        }
    }
}

/// Why a request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denied {
    /// No credential was presented (401).
    Missing,
    /// A credential was presented and is wrong, or stale (403).
    Invalid(&'static str),
    /// The endpoint has no credential configured, so it accepts nobody (403).
    NotConfigured,
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn creds() -> Credentials {
        let mut c = Credentials::new(
            vec![Secret::new("token-new-123"), Secret::new("token-old-456")],
            vec![Secret::new("alice:pa55-w0rd-x")],
            vec![Secret::new("grafana-key-1")],
            vec![Secret::new("pd-secret-new"), Secret::new("pd-secret-old")],
        );
        c.grafana_timestamp_header = Some("X-Grafana-Alerting-Timestamp".into());
        c
    }

    fn with(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn sign(key: &str, parts: &[&[u8]]) -> String {
        let mut mac = hmac_of(&Secret::new(key));
        for p in parts {
            mac.update(p);
        }
        hex::encode(mac.finalize().into_bytes())
    }

    #[test]
    fn tokens_rotate_and_wrong_ones_are_refused() {
        let c = creds();
        let am = Source::Alertmanager;
        for t in ["token-new-123", "token-old-456"] {
            let h = with(&[("authorization", format!("Bearer {t}"))]);
            assert_eq!(c.check(&am, &h, b"{}", 0), Ok(()));
        }
        let h = with(&[("authorization", "Bearer token-new-12".into())]);
        assert!(matches!(
            c.check(&am, &h, b"{}", 0),
            Err(Denied::Invalid(_))
        ));
        assert_eq!(
            c.check(&am, &HeaderMap::new(), b"{}", 0),
            Err(Denied::Missing)
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("alice:pa55-w0rd-x");
        let h = with(&[("authorization", format!("Basic {basic}"))]);
        assert_eq!(c.check(&am, &h, b"{}", 0), Ok(()));
    }

    #[test]
    fn pagerduty_signatures_cover_the_raw_body() {
        let c = creds();
        let body = br#"{"event":{}}"#;
        let old = sign("pd-secret-old", &[body]);
        let h = with(&[("x-pagerduty-signature", format!("v1=deadbeef,v1={old}"))]);
        assert_eq!(c.check(&Source::Pagerduty, &h, body, 0), Ok(()));
        let altered = br#"{"event":{} }"#;
        assert!(c.check(&Source::Pagerduty, &h, altered, 0).is_err());
        let h = with(&[("authorization", "Bearer token-new-123".into())]);
        assert_eq!(
            c.check(&Source::Pagerduty, &h, body, 0),
            Err(Denied::Missing)
        );
    }

    #[test]
    fn grafana_signatures_carry_a_fresh_timestamp() {
        let c = creds();
        let body = b"{\"alerts\":[]}";
        let now = 1_700_000_000;
        let signed = |at: i64| {
            with(&[
                (
                    "x-grafana-alerting-signature",
                    sign("grafana-key-1", &[format!("{at}:").as_bytes(), body]),
                ),
                ("x-grafana-alerting-timestamp", at.to_string()),
            ])
        };
        assert_eq!(
            c.check(&Source::Grafana, &signed(now - 10), body, now),
            Ok(())
        );
        assert!(
            c.check(&Source::Grafana, &signed(now - 301), body, now)
                .is_err()
        );
        assert!(c.check(&Source::Grafana, &signed(now), b"{}", now).is_err());
    }

    #[test]
    fn generic_hooks_take_an_hmac_in_the_configured_header_or_a_token() {
        let mut c = creds().with_hook_hmac(vec![
            Secret::new("hook-key-new"),
            Secret::new("hook-key-old"),
        ]);
        c.hook_signature_header = "X-Sig".into();
        let body = br#"{"action":"Create"}"#;
        let mapping = Source::Mapping("opsgenie".into());
        for key in ["hook-key-new", "hook-key-old"] {
            let signed = sign(key, &[body]);
            for value in [format!("sha256={signed}"), signed.clone()] {
                let h = with(&[("x-sig", value)]);
                assert_eq!(c.check(&mapping, &h, body, 0), Ok(()));
                assert_eq!(c.check(&Source::Cloudevents, &h, body, 0), Ok(()));
            }
        }
        let h = with(&[("x-sig", format!("sha256={}", sign("hook-key-new", &[body])))]);
        assert!(c.check(&mapping, &h, b"{}", 0).is_err(), "altered body");
        // Alertmanager has no HMAC: only its token counts.
        assert_eq!(
            c.check(&Source::Alertmanager, &h, body, 0),
            Err(Denied::Missing)
        );
        let h = with(&[("authorization", "Bearer token-new-123".into())]);
        assert_eq!(c.check(&mapping, &h, body, 0), Ok(()));
        assert_eq!(
            c.check(&mapping, &HeaderMap::new(), body, 0),
            Err(Denied::Missing)
        );
    }
}
