//! Untrusted data where it decides more than a value: the host a request
//! goes to (refused unless `allowed_hosts` lists where it may go), a text
//! body sent as JSON (steered to `json:`), and a step's working directory.
//! The analysis of URL templates lives in `crate::template::url`.

use super::*;

use crate::playbook::model::{RawHttp, Text};
use crate::template::url::{HostPattern, destination_exprs};

const FROM: &str = "incident data, a step's output, or an input without a literal default";

impl Checker<'_> {
    /// Checks each `allowed_hosts` entry is a host pattern.
    pub(super) fn check_allowed_hosts(&mut self, hosts: &[Spanned<String>]) {
        for h in hosts {
            if let Err(e) = HostPattern::parse(&h.value) {
                self.error(h.pos, "allowed-hosts", e)
                    .with_width_mut(h.value.len())
                    .help = Some("write `host`, `host:port` or `*.domain`".into());
            }
        }
    }

    /// Whether data that is not the playbook's own can pick where `url` goes.
    fn untrusted_destination(&self, url: &str) -> bool {
        destination_exprs(url)
            .iter()
            .any(|e| self.trust.expression_untrusted(e))
    }

    /// Checks what untrusted data decides in one step beyond a value.
    pub(super) fn check_sinks(&mut self, step: &RawStep, playbook_hosts: &[Spanned<String>]) {
        let id = &step.id.value;
        if let Some(h) = &step.http {
            self.check_allowed_hosts(&h.allowed_hosts);
            if h.allowed_hosts.is_empty()
                && playbook_hosts.is_empty()
                && self.untrusted_destination(&h.url.value)
            {
                self.error(
                    h.url.pos,
                    "untrusted-url-host",
                    format!("the host of `steps.{id}.http.url` can come from the incident"),
                )
                .with_width_mut(h.url.value.len())
                .help = Some(format!(
                    "the scheme, host or port is taken from {FROM}, so an alert could send this request (and its headers) anywhere; write them yourself, or list where it may go in `allowed_hosts:`"
                ));
            }
            self.check_json_text_body(id, h);
        }
        if let Some(n) = &step.notify {
            let urls = [
                n.slack
                    .as_ref()
                    .map(|s| ("notify.slack.webhook", &s.webhook)),
                n.teams
                    .as_ref()
                    .map(|t| ("notify.teams.webhook", &t.webhook)),
                n.webhook.as_ref().map(|w| ("notify.webhook.url", &w.url)),
                n.pagerduty
                    .as_ref()
                    .and_then(|p| p.endpoint.as_ref())
                    .map(|e| ("notify.pagerduty.endpoint", e)),
            ];
            for (field, url) in urls.into_iter().flatten() {
                if self.untrusted_destination(&url.value) {
                    self.error(
                        url.pos,
                        "untrusted-url-host",
                        format!("the host of `steps.{id}.{field}` can come from the incident"),
                    )
                    .with_width_mut(url.value.len())
                    .help = Some(format!(
                        "the scheme, host or port is taken from {FROM}; write the URL or take it from a secret"
                    ));
                }
            }
        }
        if let Some(cwd) = &step.cwd {
            self.check_cwd(id, cwd);
        }
    }

    fn check_json_text_body(&mut self, id: &str, h: &RawHttp) {
        let Some(body) = &h.body else { return };
        if crate::template::is_templated(&body.value)
            && RawHttp::sends_json(h.content_type(), Some(&body.value))
            && self.trust.template_untrusted(&body.value)
        {
            self.warning(
                body.pos,
                "json-text-body",
                format!("`steps.{id}.http.body` is JSON written as text with values from the incident"),
            )
            .help = Some(
                "each value is escaped as JSON string content, which is only right inside quotes; write the body under `json:` so every value is a JSON value".into(),
            );
        }
    }

    fn check_cwd(&mut self, id: &str, cwd: &Text) {
        if !crate::template::is_templated(&cwd.value) || !self.trust.template_untrusted(&cwd.value)
        {
            return;
        }
        let prefix = crate::template::path::literal_prefix(&cwd.value);
        let under = if prefix.is_empty() {
            "the step's working directory".to_string()
        } else {
            format!("`{prefix}`")
        };
        self.warning(
            cwd.pos,
            "untrusted-cwd",
            format!("`steps.{id}.cwd` is built from the incident"),
        )
        .with_width_mut(cwd.value.len())
        .help = Some(format!(
            "the step fails if the value leads outside {under}; prefer a fixed `cwd` and pass the value as an argument"
        ));
    }
}
