//! What an executor observed, before anyone decides whether it is a success.
//!
//! Executors ([`super::shell`], [`super::http`]) and stand-ins (`irctl
//! test`) report a [`Response`]: how a process ended, what a server answered,
//! or a typed [`StepError`] when the action could not be carried out. The
//! judge ([`super::judge`]) alone turns it into an [`super::Attempt`], so a
//! canned response is judged by exactly the rules a real one is.

use std::collections::BTreeMap;
use std::time::Duration;

/// What one execution of an action produced.
#[derive(Debug)]
pub enum Response {
    /// A process ran: it ended on its own or was stopped.
    Process(ProcessRun),
    /// A server answered (any status).
    Http(HttpReply),
    /// A console notification was shown.
    Shown,
    /// The action could not be carried out.
    Failed {
        /// Why.
        error: StepError,
        /// Time spent before it failed.
        duration: Duration,
    },
}

impl Response {
    /// A failure before anything was produced.
    pub fn failed(error: StepError, duration: Duration) -> Self {
        Response::Failed { error, duration }
    }
}

/// A process from start to end.
#[derive(Debug)]
pub struct ProcessRun {
    /// How it ended by itself, or why it did not.
    pub end: Result<Exit, Stopped>,
    /// What it wrote to stdout (capped).
    pub stdout: Captured,
    /// What it wrote to stderr (capped).
    pub stderr: Captured,
    /// Wall time.
    pub duration: Duration,
}

/// A process that did not end by itself, or could not be waited for.
#[derive(Debug)]
pub struct Stopped {
    /// Why: a timeout, a cancellation, a failed wait.
    pub error: StepError,
    /// How it exited once stopped, when that is known.
    pub exit: Option<Exit>,
}

/// How a process exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exit {
    /// Its exit code, when it exited normally.
    pub code: Option<i32>,
    /// The signal that killed it.
    pub signal: Option<i32>,
}

impl From<std::process::ExitStatus> for Exit {
    fn from(status: std::process::ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        Exit {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

/// Bytes a process wrote to one stream, up to a cap.
#[derive(Clone, Debug, Default)]
pub struct Captured {
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Whether more was written than kept.
    pub truncated: bool,
}

impl Captured {
    /// Text written in full.
    pub fn text(text: &str) -> Self {
        Captured {
            bytes: text.as_bytes().to_vec(),
            truncated: false,
        }
    }
}

/// A server's answer.
#[derive(Debug)]
pub struct HttpReply {
    /// Status code.
    pub status: u16,
    /// Headers, names in lowercase.
    pub headers: BTreeMap<String, String>,
    /// The body (capped).
    pub body: Vec<u8>,
    /// Whether the body was longer than kept.
    pub truncated: bool,
    /// Wall time.
    pub duration: Duration,
}

/// Why an action could not be carried out (or was stopped). The messages
/// are what users see in the timeline, the summary and reports.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A `command` with no words.
    #[error("empty command")]
    EmptyCommand,
    /// `cwd` names a directory that does not exist.
    #[error("working directory `{0}` does not exist")]
    NoWorkingDir(String),
    /// The program could not be started.
    #[error("cannot start `{program}`: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The process started but waiting for it failed.
    #[error("cannot wait for the process: {0}")]
    Wait(std::io::Error),
    /// The process ran past the step's timeout and was killed.
    #[error("timed out after {}", crate::duration::format(*.after))]
    Timeout {
        /// The step's timeout.
        after: Duration,
    },
    /// The request ran past the step's timeout.
    #[error("request to {host} timed out{}", cause_suffix(.cause))]
    RequestTimeout {
        /// `host` or `host:port`.
        host: String,
        /// The innermost cause reported by the transport.
        cause: Option<String>,
    },
    /// The run was interrupted while the action ran.
    #[error("cancelled{}", cause_suffix(.reason))]
    Cancelled {
        /// The signal or reason, when known.
        reason: Option<String>,
    },
    /// No connection could be made (DNS, refused, TLS handshake).
    #[error("cannot connect to {host}{}", cause_suffix(.cause))]
    Connect {
        /// `host` or `host:port`.
        host: String,
        /// The innermost cause reported by the transport.
        cause: Option<String>,
    },
    /// The redirect limit was reached.
    #[error("too many redirects from {host}{}", cause_suffix(.cause))]
    Redirects {
        /// `host` or `host:port`.
        host: String,
        /// The innermost cause reported by the transport.
        cause: Option<String>,
    },
    /// The request failed in any other way (a broken body, a protocol error).
    #[error("request to {host} failed{}", cause_suffix(.cause))]
    Request {
        /// `host` or `host:port`.
        host: String,
        /// The innermost cause reported by the transport.
        cause: Option<String>,
    },
    /// The method is not a valid HTTP token.
    #[error("invalid HTTP method `{0}`")]
    Method(String),
    /// The HTTP client could not be built.
    #[error("cannot build HTTP client: {0}")]
    Client(reqwest::Error),
    /// A stand-in executor (`irctl test`) has no answer for this attempt.
    #[error("{0}")]
    Unanswered(String),
    /// Some of a team's channels did not take its message.
    #[error("{0}")]
    Undelivered(String),
}

fn cause_suffix(cause: &Option<String>) -> String {
    cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default()
}
