//! Arguments of `serve`: the webhook receiver's listener, limits, signature
//! headers and TLS, apart because they are many and concern no other command.

use std::path::PathBuf;

use clap::Args;

use super::{SourceArgs, StateArgs, parse_duration};

/// Arguments of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The address to listen on (`IP:PORT`; port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9095", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Runs at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub max_runs: u16,
    /// Deliveries waiting before hooks answer 503 with `Retry-After`.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub queue_max: u64,
    /// Largest request body accepted (bytes); larger ones get 413.
    #[arg(long, default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1..=10 * 1024 * 1024))]
    pub max_body: u64,
    /// After SIGTERM, how long runs in flight may finish before they are stopped.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub grace: std::time::Duration,
    /// How long a delivery is remembered to recognise its copies (cover Alertmanager's `repeat_interval`).
    #[arg(long, default_value = "24h", value_name = "DURATION", value_parser = parse_duration)]
    pub dedup_window: std::time::Duration,
    /// Grafana's signature header (`hmacConfig.header`).
    #[arg(
        long,
        default_value = "X-Grafana-Alerting-Signature",
        value_name = "NAME"
    )]
    pub grafana_signature_header: String,
    /// Grafana's timestamp header (`hmacConfig.timestampHeader`): when set, signatures must carry a timestamp less than 5 minutes old.
    #[arg(long, value_name = "NAME")]
    pub grafana_timestamp_header: Option<String>,
    /// The header carrying the HMAC-SHA256 of the body (`sha256=<hex>`, secret `SERVE_HOOK_HMAC_SECRET`) on `/hooks/cloudevents` and the payload mappings' hooks.
    #[arg(long, default_value = "X-Irctl-Signature", value_name = "NAME")]
    pub hook_signature_header: String,
    /// A Slack user id (`U…`) whose Approve/Deny clicks count (repeatable); without it, anyone who sees the message may answer.
    #[arg(long = "slack-approver", value_name = "USER_ID")]
    pub slack_approvers: Vec<String>,
    /// Also post Slack message updates to this loopback origin (`http://127.0.0.1:PORT`: tests, local Slack emulators); otherwise only `https://hooks.slack.com`.
    #[arg(long = "slack-response-origin", value_name = "URL")]
    pub slack_response_origins: Vec<String>,
    /// Accept deliveries without credentials; refused unless `--listen` is a loopback address.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Serve HTTPS with this PEM certificate chain (reloaded on SIGHUP or when the file changes).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate chaining to a CA in this PEM file.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// How long a client has to finish the TLS handshake before it is closed.
    #[arg(long, default_value = "10s", value_name = "DURATION", value_parser = parse_duration)]
    pub tls_handshake_timeout: std::time::Duration,
    /// With `--repo`: fetch it in the background this often; each run uses the commit current when it starts.
    #[arg(long, default_value = "60s", value_name = "DURATION", value_parser = parse_duration)]
    pub refresh: std::time::Duration,
    #[command(flatten)]
    pub state: StateArgs,
    /// A dotenv file with serve's credentials (and the secrets runs need).
    #[arg(long, value_name = "FILE")]
    pub secrets_file: Option<PathBuf>,
    #[command(flatten)]
    pub source: SourceArgs,
}
