//! Workers: take queued deliveries and start their runs, outside any request.
//!
//! A run is the irctl binary itself, `irctl run --incident <payload>
//! --auto-only …`, so a delivery goes through exactly the CLI's matching and
//! lifecycle rules (repeats, resolved payloads), a crashing run cannot take
//! serve down, and each run has its own process group to stop. A delivery
//! is marked done only after its run exited; one taken when serve was
//! killed is taken again on the next start (at least once), and the run's
//! own repeat rule keeps that to one run.
//!
//! A worker never waits for a playbook's `concurrency` slot: runs get
//! `--defer-slots`, so a run whose playbook has no free slot runs what it
//! can (routing first), counts nothing for that playbook, and says so; the
//! delivery goes back to the queue ([`Store::defer`]) with a not-before
//! time that grows with each try, and is tried again at once when a run
//! ends. The worker meanwhile takes other deliveries, so one busy playbook
//! cannot starve the others. The retry runs only the playbooks that waited,
//! with `--waiting-since` so the run records (and gives up after) the whole
//! wait as `irctl run` would, and `--behind` names the playbooks an older
//! delivery waits for, so slots go first come, first served.

use std::ffi::OsString;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context as _;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;

use super::Shared;
use super::outcome;
use super::outcome::Outcome;
use super::store::{Deferred, Finished, Store, Taken};

/// Where serve is in its life; workers watch it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Accepting and working.
    Running,
    /// SIGTERM came: finish the runs in flight, take nothing new.
    Draining,
    /// The grace period is over: stop the runs in flight.
    Stopping,
}

/// How runs are started.
#[derive(Clone, Debug)]
pub struct Launcher {
    /// The irctl binary.
    pub exe: PathBuf,
    /// Passed as `--state-dir`.
    pub state_dir: PathBuf,
    /// More arguments for `irctl run` (the playbook source, `--secrets-file`).
    pub args: Vec<OsString>,
    /// Environment variables set for the run (`IRCTL_PLAYBOOKS`, `IRCTL_REPO`, …).
    pub env: Vec<(OsString, OsString)>,
    /// Environment variables removed (serve's own credentials).
    pub env_remove: Vec<String>,
    /// The `--repo` commit each run is pinned to when it starts.
    pub pin: Option<super::refresh::Pin>,
}

/// Most of a run's output kept with its delivery.
const OUTPUT_TAIL: u64 = 4096;
/// How long a run has to exit after SIGTERM before SIGKILL.
const KILL_AFTER: Duration = Duration::from_secs(5);
/// The first pause before a deferred delivery is tried again; it doubles
/// with each try, up to [`MAX_RETRY_PAUSE`]. A run that ends nudges every
/// deferred delivery sooner.
const FIRST_RETRY_PAUSE_MS: i64 = 250;
/// The longest pause between two tries of a deferred delivery (slots freed
/// by runs outside serve are only noticed by trying).
const MAX_RETRY_PAUSE_MS: i64 = 5_000;

/// One worker: takes deliveries until serve drains.
pub async fn work<S: Store>(shared: Arc<Shared<S>>, mut phase: watch::Receiver<Phase>) {
    loop {
        if *phase.borrow() != Phase::Running {
            return;
        }
        match shared
            .store
            .take(chrono::Utc::now().timestamp_millis())
            .await
        {
            Ok(Some(item)) => {
                let Some((finished, outcomes)) =
                    run_until_recorded(&shared, &item, &mut phase).await
                else {
                    // Serve is stopping with the disk still full: the
                    // delivery stays taken, and is taken again on the next start.
                    continue;
                };
                shared.metrics.run_ended(&finished.outcome);
                settle(&shared, &item, finished, &outcomes, &mut phase).await;
            }
            Ok(None) => {
                tokio::select! {
                    _ = shared.wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = phase.changed() => {}
                }
            }
            Err(e) => {
                (shared.log)(&format!("error: cannot take a delivery: {e:#}"));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// How long a worker waits before trying again what a full disk stopped:
/// doubling from the first to the second.
const NO_ROOM_BACKOFF: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(30));

/// Runs `item` until its run could write its record: a run that found no
/// room (exit 74, or its payload could not even be written) is not the
/// delivery's end, so it is kept and run again after a pause, until space
/// returns. `None` when serve began to stop meanwhile.
async fn run_until_recorded<S: Store>(
    shared: &Shared<S>,
    item: &Taken,
    phase: &mut watch::Receiver<Phase>,
) -> Option<(Finished, Vec<Outcome>)> {
    let mut pause = NO_ROOM_BACKOFF.0;
    loop {
        let (finished, outcomes) = run(shared, item, phase).await;
        if finished.outcome != NO_ROOM {
            return Some((finished, outcomes));
        }
        (shared.log)(&format!(
            "error: delivery {}: its run could not be recorded (no space left); kept, trying again in {}s: {}",
            item.id,
            pause.as_secs(),
            finished
                .output
                .trim_end()
                .lines()
                .last()
                .unwrap_or_default()
        ));
        if !pause_unless_stopping(pause, phase).await {
            return None;
        }
        pause = (pause * 2).min(NO_ROOM_BACKOFF.1);
    }
}

/// Marks `id` done, trying again while the store cannot write (a full disk);
/// if serve stops first, the delivery runs again after the restart (and the
/// run's repeat rule records it as a repeat).
async fn finish<S: Store>(
    shared: &Shared<S>,
    id: i64,
    finished: Finished,
    phase: &mut watch::Receiver<Phase>,
) {
    let mut pause = NO_ROOM_BACKOFF.0;
    loop {
        let Err(e) = shared.store.finish(id, finished.clone()).await else {
            return;
        };
        (shared.log)(&format!(
            "error: cannot mark delivery {id} done, trying again in {}s (if serve stops first, it runs again after a restart): {e:#}",
            pause.as_secs()
        ));
        if !pause_unless_stopping(pause, phase).await {
            return;
        }
        pause = (pause * 2).min(NO_ROOM_BACKOFF.1);
    }
}

/// Waits `pause`; false when serve is (or began) stopping.
async fn pause_unless_stopping(pause: Duration, phase: &mut watch::Receiver<Phase>) -> bool {
    let deadline = tokio::time::Instant::now() + pause;
    while *phase.borrow() == Phase::Running {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => return true,
            changed = phase.changed() => if changed.is_err() { return false },
        }
    }
    false
}

/// The outcome of a run that could not write its record for lack of room.
const NO_ROOM: &str = "no-space";

/// Marks `item` done, or queues it again when a playbook waits for a slot,
/// and says so in serve's log.
async fn settle<S: Store>(
    shared: &Shared<S>,
    item: &Taken,
    finished: Finished,
    outcomes: &[Outcome],
    phase: &mut watch::Receiver<Phase>,
) {
    let waiting: Vec<String> = outcomes
        .iter()
        .filter(|o| o.decision == outcome::DEFERRED)
        .map(|o| o.playbook.clone())
        .collect();
    let not_auto: Vec<&str> = outcomes
        .iter()
        .filter(|o| o.decision == outcome::NOT_AUTO)
        .map(|o| o.playbook.as_str())
        .collect();
    let exit = finished
        .exit_code
        .map(|c| format!(" (exit {c})"))
        .unwrap_or_default();
    let ran = outcomes.iter().any(|o| o.decision == "ran");
    let head = format!(
        "delivery {} ({}, attempt {})",
        item.id,
        item.source.as_str(),
        item.attempts
    );
    if ran {
        // A run ended, so a slot may be free: try the deferred ones now.
        if let Err(e) = shared.store.nudge().await {
            (shared.log)(&format!("error: cannot wake deferred deliveries: {e:#}"));
        }
        shared.wake.notify_waiters();
    }
    // Whatever else ran (and however it ended: its record says), the
    // playbooks that waited have not run yet.
    if !waiting.is_empty() {
        let now = chrono::Utc::now().timestamp_millis();
        let shift = u32::try_from(item.attempts.clamp(1, 16) - 1).unwrap_or(0);
        let pause = FIRST_RETRY_PAUSE_MS
            .saturating_mul(1 << shift)
            .min(MAX_RETRY_PAUSE_MS);
        let list = waiting.join(", ");
        (shared.log)(&format!(
            "{head}: waits for a free `concurrency` slot of {list}; queued again, no worker held"
        ));
        let deferred = Deferred {
            waiting_for: waiting,
            at_ms: now,
            not_before_ms: now.saturating_add(pause),
            outcome: format!("waiting: concurrency ({list})"),
            output: finished.output,
        };
        if let Err(e) = shared.store.defer(item.id, deferred).await {
            (shared.log)(&format!(
                "error: cannot queue delivery {} again (it will be tried again after a restart): {e:#}",
                item.id
            ));
        }
        return;
    }
    let mut finished = finished;
    if finished.outcome == "succeeded" && outcomes.iter().any(|o| o.decision == outcome::LATE) {
        finished.outcome = outcome::SKIPPED_LATE.into();
    }
    let mut note = String::new();
    if !not_auto.is_empty() {
        note = format!(
            "; not `auto: true`, left to people: {}",
            not_auto.join(", ")
        );
        // Correctly not run unattended: not a failure, and nothing else ran.
        if finished.outcome == "succeeded" && !ran {
            finished.outcome = SKIPPED_NOT_AUTO.into();
        }
    }
    (shared.log)(&format!("{head}: run {}{exit}{note}", finished.outcome));
    finish(shared, item.id, finished, phase).await;
}

/// A delivery's outcome when it matched only playbooks that are not `auto: true`.
pub const SKIPPED_NOT_AUTO: &str = "skipped: not auto";

/// Runs `irctl run` for `item` and says how it ended, with what it reported.
async fn run<S: Store>(
    shared: &Shared<S>,
    item: &Taken,
    phase: &mut watch::Receiver<Phase>,
) -> (Finished, Vec<Outcome>) {
    let work = shared.launcher.state_dir.join("serve").join("work");
    let payload = work.join(format!("delivery-{}.json", item.id));
    let log = work.join(format!("delivery-{}.log", item.id));
    let outcomes = work.join(format!("delivery-{}.outcome", item.id));
    // A file left by a run killed before a restart would be counted twice.
    let _ = std::fs::remove_file(&outcomes);
    shared.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    let files = Files {
        payload: &payload,
        log: &log,
        outcomes: &outcomes,
    };
    let result = spawn_and_wait(&shared.launcher, item, &work, &files, phase).await;
    shared.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    let output = tail(&log).unwrap_or_default();
    let reported = outcome::read(&outcomes);
    shared.metrics.reported(&reported);
    let _ = std::fs::remove_file(&payload);
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&outcomes);
    let finished_ms = chrono::Utc::now().timestamp_millis();
    match result {
        Ok((status, cancelled)) => {
            use std::os::unix::process::ExitStatusExt;
            let code = status.code();
            let outcome = match (cancelled, code) {
                (true, _) => "cancelled",
                (false, Some(0)) => "succeeded",
                (false, Some(1)) => "failed",
                (false, Some(2)) => "usage-error",
                (false, Some(c)) if c == i32::from(crate::fsutil::EXIT_CODE) => NO_ROOM,
                (false, Some(130)) => "interrupted",
                (false, Some(c)) if c == i32::from(outcome::EXIT_DEFERRED) => "deferred",
                (false, Some(_)) => "failed",
                (false, None) if status.signal().is_some() => "killed",
                (false, None) => "failed",
            };
            let finished = Finished {
                outcome: outcome.into(),
                exit_code: code,
                output,
                finished_ms,
            };
            (finished, reported)
        }
        Err(e) => {
            let finished = Finished {
                outcome: if e.chain().any(crate::fsutil::out_of_room) {
                    NO_ROOM.into()
                } else {
                    "crashed".into()
                },
                exit_code: None,
                output: format!("{e:#}"),
                finished_ms,
            };
            (finished, reported)
        }
    }
}

/// The files of one run: the payload it reads, where its output goes, and
/// where it reports its outcome.
struct Files<'a> {
    payload: &'a Path,
    log: &'a Path,
    outcomes: &'a Path,
}

async fn spawn_and_wait(
    launcher: &Launcher,
    item: &Taken,
    work: &Path,
    files: &Files<'_>,
    phase: &mut watch::Receiver<Phase>,
) -> anyhow::Result<(std::process::ExitStatus, bool)> {
    let Files {
        payload,
        log,
        outcomes,
    } = *files;
    std::fs::create_dir_all(work).with_context(|| format!("cannot create `{}`", work.display()))?;
    std::fs::write(payload, &item.payload)
        .with_context(|| format!("cannot write `{}`", payload.display()))?;
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create `{}`", log.display()))?;
    let err = out
        .try_clone()
        .with_context(|| format!("cannot reopen `{}`", log.display()))?;
    let mut cmd = tokio::process::Command::new(&launcher.exe);
    cmd.arg("run")
        .arg("--incident")
        .arg(payload)
        .arg("--incident-format")
        .arg(item.source.format_name())
        .arg("--auto-only")
        // Nobody is at a terminal: a `confirm` waits for `irctl approve`.
        .arg("--approval")
        .arg("wait")
        .arg("--outcome-file")
        .arg(outcomes)
        .arg("--state-dir")
        .arg(&launcher.state_dir)
        .args(&launcher.args)
        .envs(launcher.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0);
    for name in &launcher.env_remove {
        cmd.env_remove(name);
    }
    if let Some(pin) = &launcher.pin {
        cmd.arg("--pin-commit").arg(pin.get());
    }
    // Never wait for a `concurrency` slot here: see the module's doc.
    cmd.arg("--defer-slots");
    for name in &item.waiting_for {
        cmd.arg("--only-playbook").arg(name);
    }
    if let Some(since) = item.waiting_since_ms {
        cmd.arg("--waiting-since").arg(since.to_string());
    }
    for name in &item.behind {
        cmd.arg("--behind").arg(name);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start `{}`", launcher.exe.display()))?;
    let pgid = child.id().and_then(|id| i32::try_from(id).ok());
    let stopping = async {
        while *phase.borrow_and_update() != Phase::Stopping {
            if phase.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        status = child.wait() => {
            let status = status.with_context(|| format!("cannot wait for `{}`", launcher.exe.display()))?;
            Ok((status, false))
        }
        () = stopping => {
            if let Some(pgid) = pgid {
                let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
            }
            let status = match tokio::time::timeout(KILL_AFTER, child.wait()).await {
                Ok(status) => status,
                Err(_) => {
                    if let Some(pgid) = pgid {
                        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                    }
                    child.wait().await
                }
            };
            let status = status.with_context(|| format!("cannot wait for `{}`", launcher.exe.display()))?;
            Ok((status, true))
        }
    }
}

/// The last [`OUTPUT_TAIL`] bytes of `path`, as text.
fn tail(path: &Path) -> std::io::Result<String> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(OUTPUT_TAIL)))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
