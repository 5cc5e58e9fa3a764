//! The playbook file format, v1, as serde types.
//!
//! This is the *raw* mirror of a file: every field a user can write, unknown
//! fields rejected, positions kept on every value a diagnostic may point at.
//! [`crate::playbook::validate`] turns it into checked [`super::Playbook`]s;
//! `irctl schema` derives the editor JSON Schema from these same types.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::yaml::Spanned;

/// A template string with its source position.
pub type Text = Spanned<String>;

/// What a playbook is for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookKind {
    /// Fixes the incident: one per incident, chosen by priority.
    #[default]
    Remediation,
    /// Tells people (routing, impact notices): every matching one runs,
    /// beside the remediation playbook.
    Routing,
}

impl PlaybookKind {
    /// Whether it is the default kind.
    pub fn is_remediation(&self) -> bool {
        *self == PlaybookKind::Remediation
    }
}

/// One playbook file.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPlaybook {
    /// The format's version; must be `1`.
    pub version: Spanned<u32>,
    /// Unique name in the repository, kebab-case (`pg-connections-saturated`).
    pub name: Spanned<String>,
    /// A one-line title responders see.
    pub title: String,
    /// Longer explanation: what the alert means and what this playbook does.
    #[serde(default)]
    pub description: Option<String>,
    /// The team this routes to.
    #[serde(default)]
    pub owner: Option<String>,
    /// Among matching playbooks the highest priority wins.
    #[serde(default)]
    pub priority: i64,
    /// `remediation` (the default): the one playbook a match selects;
    /// `routing`: runs for every incident it matches, beside it.
    #[serde(default, skip_serializing_if = "PlaybookKind::is_remediation")]
    pub kind: PlaybookKind,
    /// `irctl serve` may start this playbook by itself when an alert
    /// arrives; without it, serve leaves the playbook to people.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto: bool,
    /// At most one run of this playbook, across all incidents, per this
    /// window (`30m`); later ones are recorded as `run_throttled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once_within: Option<Spanned<String>>,
    /// At most N runs of this playbook, across all incidents, per window:
    /// `N per DURATION` (`3 per 1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<Spanned<String>>,
    /// At most N runs of this playbook at once, across processes; more wait
    /// for a slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Spanned<u32>>,
    /// Which incidents this playbook is for.
    #[serde(default, rename = "match")]
    pub match_: Option<RawMatch>,
    /// Named inputs, overridable with `--input name=value`.
    #[serde(default)]
    pub inputs: IndexMap<String, RawInput>,
    /// Names of secrets that must be present before the run starts.
    #[serde(default)]
    pub secrets: Vec<Spanned<String>>,
    /// Defaults for every step.
    #[serde(default)]
    pub defaults: RawDefaults,
    /// Upper bound for the whole run (`30m`).
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Hosts every `http` step may send to when data picks the URL's host
    /// (`host`, `host:port`, `*.domain`); see `http.allowed_hosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<Spanned<String>>,
    /// Where `confirm` questions go when the run cannot ask on a terminal
    /// (`irctl serve`, `--approval wait`): a notification carrying the
    /// question and the exact `irctl approve` commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<RawApprovals>,
    /// Cancel a run still in flight when its incident resolves (SIGTERM,
    /// then SIGKILL after a grace period); without it the run goes on and
    /// steps not yet started see `incident.resolved`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel_on_resolve: bool,
    /// The steps, run as a DAG through `needs`.
    pub steps: Vec<RawStep>,
    /// Steps run, as a DAG of their own, when a resolved payload of a
    /// matching incident arrives (`incident.status` is `resolved`,
    /// `incident.ended_at` when it ended); without them a resolution runs
    /// nothing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_resolved: Vec<RawStep>,
    /// A scheduled drill of this playbook.
    #[serde(default)]
    pub drill: Option<RawDrill>,
    /// Tests that `irctl test` runs with canned step results (or in a sibling `NAME.test.yaml`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tests: Vec<super::test_format::RawTest>,
}

/// Conditions an incident must meet.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMatch {
    /// Alertmanager-style matchers, all of which must hold: `name="v"`, `name!="v"`, `name=~"re"`, `name!~"re"`.
    #[serde(default)]
    pub labels: Vec<Spanned<String>>,
    /// A minijinja expression over `incident` that must be true.
    #[serde(default)]
    pub when: Option<Spanned<String>>,
    /// Match each firing alert of a group on its own labels (merged with the
    /// group's common labels), and run once per matching alert, with
    /// `incident.alert` the alert in hand.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_alert: bool,
}

/// The type of an input value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// Any text (the default).
    #[default]
    String,
    /// A whole number.
    Integer,
    /// A number.
    Number,
    /// `true` or `false`.
    Boolean,
}

/// An input of the playbook.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    /// Default value; a template over `incident`, `run` and `playbook` when a string.
    #[serde(default)]
    pub default: Option<Spanned<serde_json::Value>>,
    /// What the input is for.
    #[serde(default)]
    pub description: Option<String>,
    /// Value type, checked when the run starts.
    #[serde(default, rename = "type")]
    pub kind: InputType,
    /// Fail before running when no value is given and there is no default.
    #[serde(default)]
    pub required: bool,
}

/// Defaults applied to every step.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDefaults {
    /// Step timeout (`60s`); 5m when unset.
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Retry policy for steps that do not set one.
    #[serde(default)]
    pub retry: Option<RawRetry>,
}

/// How a failed step is retried.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Total attempts, including the first (1 = no retry).
    pub attempts: Spanned<u32>,
    /// Delay before the second attempt; doubles each time (`5s`).
    #[serde(default)]
    pub backoff: Option<Spanned<String>>,
    /// Upper bound for the delay (`1m`).
    #[serde(default)]
    pub max_backoff: Option<Spanned<String>>,
}

/// When a step runs relative to the outcome of its ancestors (its `needs`,
/// their needs, and so on).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Only if no ancestor failed and no need was skipped.
    #[default]
    OnSuccess,
    /// Only if some ancestor failed, timed out or was cancelled (or was
    /// skipped because of that): escalation and rollback.
    OnFailure,
    /// Whatever happened before it.
    Always,
}

impl Trigger {
    /// The name as written in YAML.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::OnSuccess => "on_success",
            Trigger::OnFailure => "on_failure",
            Trigger::Always => "always",
        }
    }
}

/// One step: exactly one of `shell`, `command`, `http` or `notify`.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    /// Identifier, unique in the playbook; other steps refer to it in `needs` and `steps.ID`.
    pub id: Spanned<String>,
    /// Human-readable name.
    #[serde(default)]
    pub name: Option<String>,
    /// A script run with `bash -e -o pipefail -c` (`sh -e -c` where there
    /// is no bash), so it stops at the first failing command. Each
    /// interpolated value is escaped for its shell context (word, `"…"`,
    /// `'…'`, `$'…'`, heredoc), and a value that begins an argument and
    /// starts with `-` fails the step unless `--` precedes it (see the
    /// README's security section).
    #[serde(default)]
    pub shell: Option<Text>,
    /// The interpreter for `shell`, as an argv the script is appended to
    /// (`[sh, -c]` to keep going after a failing command, `[bash, -c]`);
    /// a bare name is looked up in `PATH`. Values are escaped for a POSIX
    /// shell, so the interpreter must be one.
    #[serde(default)]
    pub shell_interpreter: Option<Vec<String>>,
    /// An argv executed without a shell; each element is a template. An
    /// element that is exactly one value and starts with `-` fails the step
    /// unless a `--` element precedes it or it says `| allow_option`.
    #[serde(default)]
    pub command: Option<Vec<Text>>,
    /// Environment variables for `shell`/`command`.
    #[serde(default)]
    pub env: IndexMap<String, Text>,
    /// Working directory for `shell`/`command`.
    #[serde(default)]
    pub cwd: Option<Text>,
    /// An HTTP request.
    #[serde(default)]
    pub http: Option<RawHttp>,
    /// A notification.
    #[serde(default)]
    pub notify: Option<RawNotify>,
    /// Steps that must finish first.
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    /// A minijinja expression; the step is skipped when false.
    #[serde(default)]
    pub when: Option<Text>,
    /// Run on the success (default) or failure of the needs, or always.
    #[serde(default)]
    pub trigger: Spanned<Trigger>,
    /// Step timeout (`20s`).
    #[serde(default)]
    pub timeout: Option<Spanned<String>>,
    /// Retry policy.
    #[serde(default)]
    pub retry: Option<RawRetry>,
    /// Ask this question before running; `--yes` approves.
    #[serde(default)]
    pub confirm: Option<Text>,
    /// How long an unattended `confirm` waits for `irctl approve` before
    /// the step is declined (`30m` when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_timeout: Option<Spanned<String>>,
    /// A failure of this step does not fail the run.
    #[serde(default)]
    pub continue_on_error: bool,
    /// In a drill, record the rendered action instead of executing it.
    #[serde(default)]
    pub simulate_in_drill: bool,
    /// `false` when running the step twice is unsafe; `irctl resume` then asks first.
    #[serde(default = "default_true")]
    pub idempotent: bool,
    /// Quote this step's output (stdout, else the HTTP body) in the
    /// postmortem draft's key findings, redacted and bounded.
    #[serde(default)]
    pub report: bool,
}

fn default_true() -> bool {
    true
}

/// Where approval requests go.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    /// A notification, shaped like a `notify` step's; irctl appends the
    /// step, the question, the timeout and the approve and deny commands
    /// to its text.
    pub notify: RawNotify,
}

/// An HTTP request step.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    /// HTTP method; GET by default.
    #[serde(default)]
    pub method: Option<Spanned<String>>,
    /// The URL; interpolated values are percent-encoded unless the template is a single expression.
    pub url: Text,
    /// Request headers.
    #[serde(default)]
    pub headers: IndexMap<String, Text>,
    /// Query parameters, appended encoded.
    #[serde(default)]
    pub query: IndexMap<String, Text>,
    /// A JSON body; a string that is a single `{{ expr }}` becomes that value with its type.
    #[serde(default)]
    pub json: Option<Spanned<serde_json::Value>>,
    /// A raw body.
    #[serde(default)]
    pub body: Option<Text>,
    /// Accepted status codes; any 2xx when unset.
    #[serde(default)]
    pub expect: Option<Vec<u16>>,
    /// Skip TLS certificate verification (reported by validate).
    #[serde(default)]
    pub insecure: bool,
    /// Maximum redirects to follow (default 5, 0 disables).
    #[serde(default)]
    pub max_redirects: Option<u32>,
    /// Hosts the URL may name when data picks its host (`host`, `host:port`,
    /// `*.domain`; no port means the scheme's default); the playbook's
    /// `allowed_hosts` are added. Required when the scheme, host or port
    /// comes from untrusted data; a rendered URL to any other host fails
    /// the step before a request is sent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<Spanned<String>>,
}

impl RawHttp {
    /// The `content-type` header as written, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.value.as_str())
    }

    /// Whether a text body goes out as JSON: its `content-type` says so, or
    /// it has none and the body is written as a JSON object or array.
    pub fn sends_json(content_type: Option<&str>, body: Option<&str>) -> bool {
        match content_type {
            Some(v) => v.to_ascii_lowercase().contains("json"),
            None => body.is_some_and(|b| b.trim_start().starts_with(['{', '['])),
        }
    }
}

/// A notification step: exactly one target.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    /// Slack incoming webhook.
    #[serde(default)]
    pub slack: Option<RawSlack>,
    /// Microsoft Teams Workflows webhook.
    #[serde(default)]
    pub teams: Option<RawTeams>,
    /// PagerDuty Events API v2.
    #[serde(default)]
    pub pagerduty: Option<RawPagerduty>,
    /// A generic JSON webhook.
    #[serde(default)]
    pub webhook: Option<RawWebhook>,
    /// The responder's terminal.
    #[serde(default)]
    pub console: Option<RawConsole>,
    /// A team of the repository's `teams.yaml`, by Backstage reference
    /// (`group:default/dba`, or `dba`): `text` goes to every channel it lists.
    #[serde(default)]
    pub team: Option<Spanned<String>>,
    /// The message for `team`; values are escaped for each channel's markup.
    #[serde(default)]
    pub text: Option<Text>,
    /// A title for `team` (a Teams card's title; the start of a PagerDuty summary).
    #[serde(default)]
    pub title: Option<Text>,
    /// The team's channels, bound from `teams.yaml` when the playbook is
    /// loaded with its source; never written in a playbook.
    #[serde(skip)]
    #[schemars(skip)]
    pub bound: Option<crate::teams::Team>,
    /// For `team: owner|impacted`: every team of `teams.yaml`, bound with
    /// the source; which of them the step reaches is known only per incident.
    #[serde(skip)]
    #[schemars(skip)]
    pub roster: Option<std::sync::Arc<crate::teams::Teams>>,
    /// For `team: impacted`: the teams the incident impacts, chosen at run
    /// time (the owner and teams told earlier in the episode left out).
    #[serde(skip)]
    #[schemars(skip)]
    pub recipients: Vec<crate::teams::Recipient>,
}

/// Slack incoming webhook message.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSlack {
    /// The webhook URL, usually `{{ secrets.SLACK_WEBHOOK }}`.
    pub webhook: Text,
    /// Message text (mrkdwn).
    pub text: Text,
    /// Block Kit blocks.
    #[serde(default)]
    pub blocks: Option<Spanned<serde_json::Value>>,
}

/// Teams Workflows webhook message, sent as an Adaptive Card.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTeams {
    /// The Workflows webhook URL.
    pub webhook: Text,
    /// Card title.
    #[serde(default)]
    pub title: Option<Text>,
    /// Card text.
    pub text: Text,
}

/// PagerDuty Events API v2 action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PagerdutyAction {
    /// Open (or re-open) an alert.
    #[default]
    Trigger,
    /// Acknowledge an alert.
    Acknowledge,
    /// Resolve an alert.
    Resolve,
    /// A change event (deploys, config changes).
    Change,
}

/// PagerDuty Events API v2 event.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPagerduty {
    /// Integration (routing) key, usually `{{ secrets.PD_ROUTING_KEY }}`.
    pub routing_key: Text,
    /// trigger (default), acknowledge, resolve or change.
    #[serde(default)]
    pub action: Spanned<PagerdutyAction>,
    /// Deduplication key; required for acknowledge and resolve.
    #[serde(default)]
    pub dedup_key: Option<Text>,
    /// Summary shown in PagerDuty (trigger and change).
    #[serde(default)]
    pub summary: Option<Text>,
    /// critical, error, warning or info (trigger).
    #[serde(default)]
    pub severity: Option<Text>,
    /// The affected system (trigger and change); `irctl` when unset.
    #[serde(default)]
    pub source: Option<Text>,
    /// Extra details.
    #[serde(default)]
    pub custom_details: Option<Spanned<serde_json::Value>>,
    /// API endpoint; PagerDuty's when unset.
    #[serde(default)]
    pub endpoint: Option<Text>,
}

/// A generic JSON webhook.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    /// Target URL.
    pub url: Text,
    /// The JSON body; single-expression strings keep their type.
    #[serde(default)]
    pub json: Option<Spanned<serde_json::Value>>,
    /// Extra headers.
    #[serde(default)]
    pub headers: IndexMap<String, Text>,
    /// Key for an `X-Irctl-Signature: sha256=<hex>` HMAC-SHA256 header over the body.
    #[serde(default)]
    pub hmac_secret: Option<Text>,
}

/// A message on the responder's terminal.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConsole {
    /// The message.
    pub text: Text,
}

/// A scheduled drill.
#[derive(Clone, Debug, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrill {
    /// 5-field cron schedule (`0 10 * * MON`).
    #[serde(default)]
    pub schedule: Option<Spanned<String>>,
    /// The synthetic incident: any supported payload or irctl's own format.
    pub incident: Spanned<serde_json::Value>,
    /// The drill fails when it runs longer than this.
    #[serde(default)]
    pub max_duration: Option<Spanned<String>>,
    /// Inputs for the drill run.
    #[serde(default)]
    pub inputs: IndexMap<String, serde_json::Value>,
    /// Where notifications go in a drill instead of their usual targets.
    #[serde(default)]
    pub notify: Option<RawDrillNotify>,
}

/// Drill notification overrides: each replaces the destination of every
/// notification of that service in a drill, so drills can page a test
/// channel instead of the real on-call. Templates over `secrets`, `inputs`,
/// `incident`, `run` and `playbook`.
#[derive(Clone, Debug, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrillNotify {
    /// Slack webhook URL for drills.
    #[serde(default)]
    pub slack: Option<Text>,
    /// Teams Workflows webhook URL for drills.
    #[serde(default)]
    pub teams: Option<Text>,
    /// PagerDuty routing key for drills (a test service's integration key).
    #[serde(default)]
    pub pagerduty: Option<Text>,
    /// URL for generic webhooks in drills.
    #[serde(default)]
    pub webhook: Option<Text>,
}
