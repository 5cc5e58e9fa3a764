//! Approvals for `confirm` steps nobody can answer on a terminal (runs
//! started by `irctl serve`, or `irctl run --approval wait` without one).
//!
//! The timeline has one writer, the run, and its hash chain depends on
//! that; so `irctl approve`, another process, never appends to it. The
//! waiting run posts a request file under the run's directory
//! (`runs/RUN/approvals/STEP.request.json`, naming a fresh nonce, its pid
//! and start time); an answer is a second file, `STEP.NONCE.answer.json`,
//! published with a hard link, which fails when the name exists: exactly
//! one answer per request, whoever comes first — a person approving or
//! denying, or the run itself declining when the step's `confirm_timeout`
//! passes. The run polls for that file at a bounded interval, then records
//! the `confirmation` in its timeline. A run resumed after it died while
//! waiting posts a new nonce, so it asks again; an answer to a dead run is
//! refused, with a hint to `irctl resume`.
//!
//! Run and step ids come from the command line here, so both are checked
//! to be plain names before they touch a path, and no file is opened
//! through a symbolic link.

pub mod message;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// The directory of a run's approval files.
pub const DIR_NAME: &str = "approvals";

/// How often a waiting run looks for an answer.
pub const POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// What a waiting run posts: the question and how to answer it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Tells this request's answer apart from an earlier attempt's.
    pub nonce: String,
    /// The step.
    pub step: String,
    /// The question, rendered and redacted.
    pub question: String,
    /// When it stops waiting (RFC 3339).
    pub deadline: String,
    /// The waiting process.
    pub pid: u32,
    /// Its start time (clock ticks since boot), so a reused pid is not taken for it.
    pub start: u64,
}

/// One answer to a request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// Approved or declined.
    pub approved: bool,
    /// Who answered (`--as`, else the OS user); `irctl` for the run itself.
    pub by: String,
    /// How: `irctl approve`, `irctl approve --deny`, or why the run declined itself.
    pub via: String,
    /// Why, in the answerer's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When (RFC 3339).
    pub at: String,
}

/// Why `irctl approve` did not answer.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No request of that step is open.
    #[error(
        "step `{step}` of run `{run}` is not waiting for approval; `irctl timeline {run}` shows where the run is"
    )]
    NotWaiting {
        /// The run.
        run: String,
        /// The step.
        step: String,
    },
    /// The process that asked is gone.
    #[error(
        "run `{run}` is no longer running (its process {pid} has exited), so nobody waits for this answer; `irctl resume {run}` continues it and asks again"
    )]
    NotRunning {
        /// The run.
        run: String,
        /// The process that asked.
        pid: u32,
    },
    /// Someone (or the timeout) answered first.
    #[error(
        "step `{step}` of run `{run}` was already answered: {} by {} ({}); an answer is given once",
        if .answer.approved { "approved" } else { "declined" },
        .answer.by,
        .answer.via
    )]
    AlreadyAnswered {
        /// The run.
        run: String,
        /// The step.
        step: String,
        /// The answer that stands.
        answer: Box<Answer>,
    },
}

/// Fails unless `id` is a plain run id: letters, digits, `-`, `_` and `.`, not starting with `.`.
pub fn check_run_id(id: &str) -> anyhow::Result<()> {
    let plain = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if !plain {
        anyhow::bail!("`{id}` is not a run id (`irctl runs` lists them)");
    }
    Ok(())
}

/// Fails unless `id` is a step id as playbooks allow them (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn check_step_id(id: &str) -> anyhow::Result<()> {
    let mut chars = id.chars();
    let plain = id.len() <= 128
        && matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !plain {
        anyhow::bail!("`{id}` is not a step id (letters, digits and `_`)");
    }
    Ok(())
}

/// The directory of run `run`'s approval files, created when `create`.
/// It must be a real directory: a link planted in a shared state directory
/// is refused, never followed.
fn dir(state_dir: &Path, run: &str, create: bool) -> anyhow::Result<PathBuf> {
    check_run_id(run)?;
    let dir = crate::engine::run_dir(state_dir, run).join(DIR_NAME);
    if create {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create `{}`", dir.display()))?;
    }
    if std::fs::symlink_metadata(&dir).is_ok_and(|m| !m.is_dir()) {
        anyhow::bail!(
            "`{}` is not a directory (a symbolic link?); irctl keeps approvals in a real one",
            dir.display()
        );
    }
    Ok(dir)
}

fn request_path(dir: &Path, step: &str) -> PathBuf {
    dir.join(format!("{step}.request.json"))
}

fn answer_path(dir: &Path, step: &str, nonce: &str) -> PathBuf {
    dir.join(format!("{step}.{nonce}.answer.json"))
}

/// Reads `path` without following a link; `None` when it does not exist.
pub(crate) fn read_plain(path: &Path) -> anyhow::Result<Option<String>> {
    let opened = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path);
    let mut file = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot open `{}`", path.display())),
    };
    if !file
        .metadata()
        .with_context(|| format!("cannot inspect `{}`", path.display()))?
        .is_file()
    {
        anyhow::bail!("`{}` is not a regular file", path.display());
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read `{}`", path.display()))?;
    Ok(Some(text))
}

/// Writes `bytes` to a new file at `path` (never through a link, never over
/// an existing file), synced.
pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))
}

/// A fresh nonce.
pub fn nonce() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        // Without OS randomness, time and pid still tell attempts apart.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default();
        bytes = (t ^ u64::from(std::process::id())).to_le_bytes();
    }
    hex::encode(bytes)
}

/// Posts `request` for run `run` (replacing an earlier attempt's), so
/// `irctl approve` finds it.
pub fn post(state_dir: &Path, run: &str, request: &Request) -> anyhow::Result<()> {
    check_step_id(&request.step)?;
    let dir = dir(state_dir, run, true)?;
    let path = request_path(&dir, &request.step);
    let staged = dir.join(format!(".{}.{}.request.tmp", request.step, request.nonce));
    let text = serde_json::to_vec(request).context("cannot encode the approval request")?;
    write_new(&staged, &text)?;
    // A rename replaces the name itself, even when it is a link.
    std::fs::rename(&staged, &path).with_context(|| format!("cannot write `{}`", path.display()))
}

/// Removes run `run`'s request for `step`: nobody waits for it any more.
pub fn withdraw(state_dir: &Path, run: &str, step: &str) {
    if let Ok(dir) = dir(state_dir, run, false) {
        let _ = std::fs::remove_file(request_path(&dir, step));
    }
}

/// The open request of `step` in run `run`, if there is one.
pub fn request(state_dir: &Path, run: &str, step: &str) -> anyhow::Result<Option<Request>> {
    check_step_id(step)?;
    let dir = dir(state_dir, run, false)?;
    let path = request_path(&dir, step);
    match read_plain(&path)? {
        None => Ok(None),
        Some(text) => serde_json::from_str(&text)
            .map(Some)
            .with_context(|| format!("`{}` is not an approval request", path.display())),
    }
}

/// The answer to request `nonce` of `step`, once one is published.
pub fn answer_of(state_dir: &Path, run: &str, step: &str, nonce: &str) -> Option<Answer> {
    let dir = dir(state_dir, run, false).ok()?;
    let text = read_plain(&answer_path(&dir, step, nonce)).ok()??;
    serde_json::from_str(&text).ok()
}

/// Publishes `answer` to request `nonce` of `step`: `Ok(None)` when it is
/// the answer, `Ok(Some(first))` when another was published first.
pub fn publish(
    state_dir: &Path,
    run: &str,
    step: &str,
    nonce: &str,
    answer: &Answer,
) -> anyhow::Result<Option<Answer>> {
    check_step_id(step)?;
    if !nonce.bytes().all(|b| b.is_ascii_hexdigit()) || nonce.is_empty() {
        anyhow::bail!("approval request of step `{step}` has a malformed nonce");
    }
    let dir = dir(state_dir, run, true)?;
    let path = answer_path(&dir, step, nonce);
    // Written whole under a private name, then linked into place: the run
    // never reads half an answer, and a link fails when the name exists.
    let staged = dir.join(format!(
        ".{step}.{nonce}.{}.{}.answer.tmp",
        std::process::id(),
        self::nonce()
    ));
    let text = serde_json::to_vec(answer).context("cannot encode the answer")?;
    write_new(&staged, &text)?;
    let linked = std::fs::hard_link(&staged, &path);
    let _ = std::fs::remove_file(&staged);
    match linked {
        Ok(()) => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(answer_of(state_dir, run, step, nonce).or_else(|| {
                Some(Answer {
                    approved: false,
                    by: "unknown".into(),
                    via: "unreadable answer".into(),
                    reason: None,
                    at: String::new(),
                })
            }))
        }
        Err(e) => Err(e).with_context(|| format!("cannot write `{}`", path.display())),
    }
}

/// What `irctl approve` did.
#[derive(Debug)]
pub struct Given {
    /// The request that was answered.
    pub request: Request,
    /// The answer.
    pub answer: Answer,
}

/// Answers the open request of `step` in run `run` (`irctl approve`):
/// refused ([`Refused`]) when the step is not waiting, the run's process
/// is gone, or an answer was already given.
pub fn give(state_dir: &Path, run: &str, step: &str, answer: Answer) -> anyhow::Result<Given> {
    let Some(request) = request(state_dir, run, step)? else {
        return Err(Refused::NotWaiting {
            run: run.into(),
            step: step.into(),
        }
        .into());
    };
    if let Some(first) = answer_of(state_dir, run, step, &request.nonce) {
        return Err(already(run, step, first));
    }
    let pid = i32::try_from(request.pid).unwrap_or(0);
    if pid <= 0 || !crate::process::alive(pid, request.start) {
        return Err(Refused::NotRunning {
            run: run.into(),
            pid: request.pid,
        }
        .into());
    }
    match publish(state_dir, run, step, &request.nonce, &answer)? {
        None => Ok(Given { request, answer }),
        Some(first) => Err(already(run, step, first)),
    }
}

fn already(run: &str, step: &str, answer: Answer) -> anyhow::Error {
    Refused::AlreadyAnswered {
        run: run.into(),
        step: step.into(),
        answer: Box::new(answer),
    }
    .into()
}

/// The commands that approve and deny `step` of run `run` kept in
/// `state_dir`, ready to paste: the state directory made absolute and
/// quoted for a POSIX shell.
pub fn commands(state_dir: &Path, run: &str, step: &str) -> (String, String) {
    let dir = std::fs::canonicalize(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let approve = format!(
        "irctl approve {} {} --state-dir {}",
        crate::template::shell_quote(run),
        crate::template::shell_quote(step),
        crate::template::shell_quote(&dir.to_string_lossy())
    );
    let deny = format!("{approve} --deny");
    (approve, deny)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(approved: bool, by: &str) -> Answer {
        Answer {
            approved,
            by: by.into(),
            via: "test".into(),
            reason: None,
            at: "2000-01-01T00:00:00.000Z".into(),
        }
    }

    fn open_request(state: &Path, run: &str) -> Request {
        let request = Request {
            nonce: nonce(),
            step: "restart".into(),
            question: "restart?".into(),
            deadline: "2000-01-01T00:30:00.000Z".into(),
            pid: std::process::id(),
            start: crate::process::own_start(),
        };
        post(state, run, &request).unwrap();
        request
    }

    #[test]
    fn one_answer_per_request_and_the_second_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let request = open_request(dir.path(), "r-1");
        let given = give(dir.path(), "r-1", "restart", answer(true, "alice")).unwrap();
        assert_eq!(given.request, request);
        let err = give(dir.path(), "r-1", "restart", answer(false, "bob")).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Refused>(),
                Some(Refused::AlreadyAnswered { answer, .. }) if answer.by == "alice"
            ),
            "{err:#}"
        );
        let stands = answer_of(dir.path(), "r-1", "restart", &request.nonce).unwrap();
        assert!(stands.approved);
    }

    #[test]
    fn a_step_that_does_not_wait_and_a_dead_run_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = give(dir.path(), "r-1", "restart", answer(true, "a")).unwrap_err();
        assert!(matches!(
            err.downcast_ref::<Refused>(),
            Some(Refused::NotWaiting { .. })
        ));
        let mut request = open_request(dir.path(), "r-2");
        request.start += 1;
        post(dir.path(), "r-2", &request).unwrap();
        let err = give(dir.path(), "r-2", "restart", answer(true, "a")).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Refused>(),
                Some(Refused::NotRunning { .. })
            ),
            "{err:#}"
        );
    }

    #[test]
    fn hostile_ids_never_reach_a_path() {
        let dir = tempfile::tempdir().unwrap();
        for run in ["../x", "", ".hidden", "a/b", "a\0b"] {
            assert!(
                give(dir.path(), run, "s", answer(true, "a")).is_err(),
                "{run}"
            );
        }
        for step in ["../x", "a.b", "1a", "a/b", ""] {
            assert!(
                give(dir.path(), "r", step, answer(true, "a")).is_err(),
                "{step}"
            );
        }
        assert!(!dir.path().join("x").exists());
    }

    #[test]
    fn a_planted_link_is_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let request = open_request(dir.path(), "r-3");
        let approvals = crate::engine::run_dir(dir.path(), "r-3").join(DIR_NAME);
        let target = dir.path().join("elsewhere");
        std::fs::write(&target, "precious").unwrap();
        std::os::unix::fs::symlink(&target, answer_path(&approvals, "restart", &request.nonce))
            .unwrap();
        assert!(give(dir.path(), "r-3", "restart", answer(true, "a")).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
    }

    #[test]
    fn commands_quote_the_state_dir() {
        let (approve, deny) = commands(Path::new("/no such/dir"), "r-1", "restart");
        assert_eq!(
            approve,
            "irctl approve r-1 restart --state-dir '/no such/dir'"
        );
        assert_eq!(deny, format!("{approve} --deny"));
    }
}
