//! What a URL template lets data decide. A value placed before the end of
//! the authority picks where the request goes (and so where its headers,
//! secrets included, are sent); `validate` refuses that for untrusted data
//! unless the playbook lists `allowed_hosts`, and the step checks the
//! rendered host against that list before any request. A value that is a
//! whole path segment of `.` or `..` would climb the path: it is
//! percent-encoded, and because URL parsers still read `%2E%2E` as `..`,
//! a rendered path with such a segment fails the step.

use super::jinja::{self, Segment};

/// The expressions that decide a URL template's scheme, host or port:
/// every placeholder or tag before the authority ends. Empty when the
/// destination is written literally.
pub fn destination_exprs(source: &str) -> Vec<&str> {
    let mut text = String::new();
    let mut out = Vec::new();
    for seg in jinja::segments(source) {
        if authority_ended(&text) {
            break;
        }
        match seg {
            Segment::Text(t) => text.push_str(t),
            Segment::Value(p) => {
                out.push(p.expr);
                // A value stands for unknown text in the authority.
                text.push('x');
            }
            Segment::Tag(t) => out.push(t),
        }
    }
    out
}

fn authority_ended(text: &str) -> bool {
    text.find("://")
        .is_some_and(|i| text[i + 3..].contains(['/', '?', '#']))
}

/// Whether data can decide where a request to this URL template goes.
pub fn destination_templated(source: &str) -> bool {
    !destination_exprs(source).is_empty()
}

/// A value as one URL component: percent-encoded, and a lone `.` or `..`
/// encoded too so it is not a dot segment as written.
pub fn component(s: &str) -> String {
    match s {
        "." => "%2E".into(),
        ".." => "%2E%2E".into(),
        _ => super::url_component(s),
    }
}

/// Refuses a rendered URL whose path has a dot segment in any spelling.
/// URL parsers resolve `%2E%2E` like `..`, so encoding alone cannot keep
/// a label from climbing the path.
pub fn check_path(url: &str) -> Result<(), String> {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let Some(slash) = after_scheme.find('/') else {
        return Ok(());
    };
    let path = &after_scheme[slash..];
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let dot = |seg: &str| {
        let seg = seg.to_ascii_lowercase().replace("%2e", ".");
        seg == "." || seg == ".."
    };
    match path.split('/').find(|s| dot(s)) {
        Some(seg) => Err(format!(
            "the URL path segment `{seg}` would climb the path; a value cannot be `.` or `..` in a URL path"
        )),
        None => Ok(()),
    }
}

/// An `allowed_hosts` entry: `host`, `host:port`, or `*.domain[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    /// Lowercase host, or the domain after `*.` when `subdomains`.
    host: String,
    /// Any subdomain of `host` (not `host` itself).
    subdomains: bool,
    /// The port; the scheme's default port when unset.
    port: Option<u16>,
}

impl HostPattern {
    /// Parses one pattern, or says what is wrong with it.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let s = s.trim();
        if s.contains("://") || s.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{s}` is not a host: write `host` or `host:port` without a scheme or path"
            ));
        }
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(':') && !p.contains(']') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("`{s}` has an invalid port `{p}`"))?;
                (h, Some(port))
            }
            _ => (s, None),
        };
        let (host, subdomains) = match host.strip_prefix("*.") {
            Some(rest) => (rest, true),
            None => (host, false),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "`{s}` is not a host pattern: `*` may only begin it, as in `*.example.com`"
            ));
        }
        Ok(HostPattern {
            host: host.to_ascii_lowercase(),
            subdomains,
            port,
        })
    }

    /// Whether `host` on `port` (the port in effect) matches, where the
    /// scheme's own port is `default_port`.
    fn matches(&self, host: &str, port: Option<u16>, default_port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        let host_ok = if self.subdomains {
            host.strip_suffix(&self.host)
                .is_some_and(|head| head.len() > 1 && head.ends_with('.'))
        } else {
            host == self.host
        };
        let port_ok = match self.port {
            Some(p) => port == Some(p),
            None => port == default_port,
        };
        host_ok && port_ok
    }
}

/// Checks that the rendered `url` of template `source` goes where the
/// playbook allows: anywhere when the destination is literal or no list
/// is given (`validate` made sure data cannot choose it then), else to a
/// host in `allowed`.
pub fn check_destination<'a>(
    source: &str,
    url: &str,
    allowed: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    let allowed: Vec<&str> = allowed.into_iter().collect();
    if allowed.is_empty() || !destination_templated(source) {
        return Ok(());
    }
    let parsed = ::url::Url::parse(url).map_err(|e| format!("invalid URL `{url}`: {e}"))?;
    let Some(host) = parsed.host_str() else {
        return Err(format!("the URL `{url}` names no host"));
    };
    let patterns: Vec<HostPattern> = allowed
        .iter()
        .filter_map(|p| HostPattern::parse(p).ok())
        .collect();
    let shown = match parsed.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    let default_port = match parsed.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    if patterns
        .iter()
        .any(|p| p.matches(host, parsed.port_or_known_default(), default_port))
    {
        Ok(())
    } else {
        Err(format!(
            "the URL's host `{shown}` is not in `allowed_hosts`; no request was sent"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_destination_is_what_comes_before_the_authority_ends() {
        assert!(destination_exprs("https://api.example/x/{{ a }}").is_empty());
        assert!(destination_exprs("https://api.example?q={{ a }}").is_empty());
        assert_eq!(destination_exprs("{{ u }}"), ["u"]);
        assert_eq!(destination_exprs("https://{{ h }}/x/{{ p }}"), ["h"]);
        assert_eq!(destination_exprs("https://api.example{{ h }}/x"), ["h"]);
        assert_eq!(destination_exprs("{{ s }}://x/{{ p }}"), ["s"]);
        assert!(!destination_templated("https://plain.example"));
    }

    #[test]
    fn dot_segments_are_refused_in_every_spelling() {
        assert_eq!(component(".."), "%2E%2E");
        assert_eq!(component("a.b"), "a.b");
        for bad in [
            "http://h/a/%2E%2E/b",
            "http://h/a/%2e./b",
            "http://h/a/./b",
            "http://h/..",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
        for good in [
            "http://h/a/..b/c?x=..",
            "http://h",
            "http://h/a#..",
            "http://h/%2E%2Ex",
        ] {
            assert!(check_path(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn host_patterns_match_host_and_port() {
        let allowed =
            |p: &[&str], url: &str| check_destination("{{ u }}", url, p.iter().copied()).is_ok();
        assert!(allowed(&["runbooks.example"], "https://runbooks.example/x"));
        assert!(allowed(
            &["runbooks.example"],
            "https://RUNBOOKS.example:443/x"
        ));
        assert!(!allowed(
            &["runbooks.example"],
            "https://runbooks.example:8443/x"
        ));
        assert!(allowed(
            &["runbooks.example:8443"],
            "https://runbooks.example:8443/"
        ));
        assert!(allowed(&["*.example"], "https://a.b.example/"));
        assert!(!allowed(&["*.example"], "https://example/"));
        assert!(!allowed(&["*.example"], "https://evilexample/"));
        assert!(!allowed(
            &["runbooks.example"],
            "https://runbooks.example.evil/"
        ));
        assert!(!allowed(
            &["runbooks.example"],
            "https://runbooks.example@evil/"
        ));
        assert!(allowed(&["127.0.0.1:9"], "http://127.0.0.1:9/"));
        assert!(HostPattern::parse("https://x").is_err());
        assert!(HostPattern::parse("x:port").is_err());
        assert!(HostPattern::parse("a.*.b").is_err());
        assert!(HostPattern::parse("[::1]:80").is_ok());
    }
}
