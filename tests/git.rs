//! Playbooks from Git, end to end: real repositories built with the `git`
//! CLI, served on 127.0.0.1 by `git daemon` and smart HTTP, plus `file://`
//! and worktrees; the cache, offline fallback, pinning, auth and history as
//! a responder or a CI job would see them.

mod common;
#[path = "support/gitserver.rs"]
mod gitserver;
#[path = "support/wait.rs"]
mod wait;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Output, Test};
use gitserver::{Daemon, HttpGit, Repo, free_port};
use wait::wait_until;

/// A valid playbook named `name`, with `note` in its title so versions differ.
fn playbook(name: &str, note: &str) -> String {
    format!(
        "version: 1\nname: {name}\ntitle: {name} {note}\nmatch:\n  labels: ['alertname=\"{name}\"']\ndrill:\n  incident: {{ title: d, labels: {{ alertname: {name} }} }}\nsteps:\n  - id: check\n    shell: \"echo {note}\"\n"
    )
}

/// A playbook with an error (`needs` an unknown step).
fn broken(name: &str) -> String {
    format!(
        "version: 1\nname: {name}\ntitle: broken\nmatch:\n  labels: ['alertname=\"{name}\"']\ndrill:\n  incident: {{ title: d, labels: {{ alertname: {name} }} }}\nsteps:\n  - id: check\n    needs: [nope]\n    shell: \"true\"\n"
    )
}

/// `irctl` with HOME, XDG dirs and git config isolated in `repo`'s temp dir.
fn irctl(repo: &Repo) -> Test {
    let home = repo.home();
    let s = |p: &Path| p.to_str().expect("utf-8 path").to_string();
    Test::new()
        .env("HOME", &s(&home))
        .env("XDG_CACHE_HOME", &s(&home.join(".cache")))
        .env("XDG_CONFIG_HOME", &s(&home.join(".config")))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
}

/// `irctl list --format json --repo URL --cache-dir … EXTRA`.
fn list(repo: &Repo, url: &str, extra: &[&str]) -> Test {
    irctl(repo)
        .args(["list", "--format", "json", "--repo", url, "--cache-dir"])
        .arg(repo.cache())
        .args(extra)
}

/// [`list`] with the URL in `IRCTL_REPO`: the one place a URL that carries
/// a credential is accepted (a command line is visible in `ps`).
fn list_env(repo: &Repo, url: &str, extra: &[&str]) -> Test {
    irctl(repo)
        .args(["list", "--format", "json", "--cache-dir"])
        .arg(repo.cache())
        .args(extra)
        .env("IRCTL_REPO", url)
}

/// Playbook names in a `list --format json` output.
fn names(out: &Output) -> Vec<String> {
    out.json()
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_string())
        .collect()
}

/// The one provenance commit of a `list --format json` output.
fn commit(out: &Output) -> String {
    let json = out.json();
    let mut commits: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|p| p["provenance"]["commit"].as_str().expect("commit"))
        .collect();
    commits.dedup();
    assert_eq!(commits.len(), 1, "one commit: {commits:?}");
    commits[0].to_string()
}

/// Three versions: tag `v1.4.0` (a), `main` (a, b), branch `next` (a, b, c).
fn three_versions(repo: &Repo) -> (String, String, String) {
    repo.write("playbooks/a.yaml", &playbook("alpha", "one"));
    let first = repo.commit("add alpha");
    repo.git(&["tag", "-a", "v1.4.0", "-m", "release 1.4.0"]);
    repo.write("playbooks/b.yaml", &playbook("bravo", "one"));
    let second = repo.commit("add bravo");
    repo.git(&["checkout", "-q", "-b", "next"]);
    repo.write("playbooks/c.yaml", &playbook("charlie", "one"));
    let third = repo.commit("add charlie");
    repo.git(&["checkout", "-q", "main"]);
    repo.push();
    (first, second, third)
}

#[test]
fn tag_branch_and_commit_pins_give_their_own_playbooks_over_git_daemon() {
    let repo = Repo::new();
    let (first, second, third) = three_versions(&repo);
    let daemon = Daemon::start(&repo);
    let url = daemon.url();

    let out = list(&repo, &url, &[]).run();
    assert_eq!(names(&out), ["alpha", "bravo"], "default branch is main");
    assert_eq!(commit(&out), second);
    let p = &out.json()[0]["provenance"];
    assert_eq!(p["repo"], url.as_str());
    assert_eq!(p["ref"], "main");
    assert_eq!(p["path"], "playbooks/a.yaml");
    assert_eq!(p["blob"].as_str().map(str::len), Some(40));

    let out = list(&repo, &url, &["--ref", "v1.4.0"]).run();
    assert_eq!(names(&out), ["alpha"]);
    assert_eq!(commit(&out), first);

    let out = list(&repo, &url, &["--ref", "next"]).run();
    assert_eq!(names(&out), ["alpha", "bravo", "charlie"]);
    assert_eq!(commit(&out), third);

    let out = list(&repo, &url, &["--ref", &first]).run();
    assert_eq!(names(&out), ["alpha"]);
    let out = list(&repo, &url, &["--ref", &third[..10]]).run();
    assert_eq!(names(&out), ["alpha", "bravo", "charlie"]);

    // The table shows the short commit next to each file.
    irctl(&repo)
        .args(["list", "--repo", &url, "--ref", "v1.4.0", "--cache-dir"])
        .arg(repo.cache())
        .stdout_contains(&format!("playbooks/a.yaml@{}", &first[..8]))
        .run();
}

#[test]
fn a_full_commit_pin_in_the_cache_needs_no_server() {
    let repo = Repo::new();
    let (first, _, _) = three_versions(&repo);
    let daemon = Daemon::start(&repo);
    let url = daemon.url();
    list(&repo, &url, &[]).run();
    drop(daemon);
    // Commits never change, so a cached one is used without trying the server.
    let out = list(&repo, &url, &["--ref", &first]).stderr("").run();
    assert_eq!(names(&out), ["alpha"]);
}

#[test]
fn a_fetch_brings_a_new_commit_over_smart_http() {
    let repo = Repo::new();
    repo.write("playbooks/a.yaml", &playbook("alpha", "one"));
    let first = repo.commit("add alpha");
    repo.push();
    let server = HttpGit::start(&repo, None);
    let out = list(&repo, &server.url(), &[]).run();
    assert_eq!(commit(&out), first);
    assert!(out.json()[0]["title"] == "alpha one");

    repo.write("playbooks/a.yaml", &playbook("alpha", "two"));
    let second = repo.commit("alpha, take two");
    repo.push();
    let out = list(&repo, &server.url(), &[]).stderr("").run();
    assert_eq!(commit(&out), second);
    assert!(out.json()[0]["title"] == "alpha two");

    // Nothing new: one round trip, the ref advertisement, and no pack.
    let before = server.requests().len();
    list(&repo, &server.url(), &[]).stderr("").run();
    assert_eq!(
        server.requests()[before..],
        ["GET /playbooks.git/info/refs?service=git-upload-pack"]
    );

    // --offline never asks the server: a newer commit stays unseen.
    repo.write("playbooks/a.yaml", &playbook("alpha", "three"));
    repo.commit("alpha, take three");
    repo.push();
    let out = list(&repo, &server.url(), &["--offline"]).stderr("").run();
    assert_eq!(commit(&out), second);
}

#[test]
fn file_urls_local_paths_and_the_xdg_cache_work() {
    let repo = Repo::new();
    let (_, second, _) = three_versions(&repo);
    let out = list(&repo, &repo.file_url(), &[]).run();
    assert_eq!(commit(&out), second);
    // Without --cache-dir the cache lives under $XDG_CACHE_HOME/irctl.
    let served = repo.served();
    let out = irctl(&repo)
        .args(["list", "--format", "json", "--repo"])
        .arg(&served)
        .run();
    assert_eq!(commit(&out), second);
    let cached = std::fs::read_dir(repo.home().join(".cache/irctl"))
        .expect("XDG cache dir")
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".git"));
    assert!(cached, "a bare cache under $XDG_CACHE_HOME/irctl");
}

#[test]
fn server_down_falls_back_to_the_cache_loudly() {
    let repo = Repo::new();
    let (_, second, _) = three_versions(&repo);
    let server = HttpGit::start(&repo, None);
    let url = server.url();
    list(&repo, &url, &[]).run();
    drop(server);

    let out = list(&repo, &url, &[])
        .stderr_contains("warning: cannot fetch `http://127.0.0.1:")
        .stderr_contains(&format!(
            "USING CACHED PLAYBOOKS: commit {} (`main`, committed just now, last fetched just now)",
            &second[..8]
        ))
        .run();
    assert_eq!(names(&out), ["alpha", "bravo"]);
}

#[test]
fn a_server_that_never_answers_is_bounded_by_the_fetch_timeout() {
    let repo = Repo::new();
    three_versions(&repo);
    let server = HttpGit::start(&repo, None);
    let addr = server.addr;
    let url = server.url();
    list(&repo, &url, &[]).run();
    drop(server);
    // Same address, now a socket that accepts connections and never replies.
    let silent = TcpListener::bind(addr).expect("rebind the port");
    let started = Instant::now();
    let out = list(&repo, &url, &["--fetch-timeout", "1s"])
        .stderr_contains("USING CACHED PLAYBOOKS")
        .run();
    assert_eq!(names(&out), ["alpha", "bravo"]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "took {:?}",
        started.elapsed()
    );
    drop(silent);
}

#[test]
fn nothing_cached_and_server_down_is_exit_2_naming_the_host() {
    let repo = Repo::new();
    let port = free_port();
    let url = format!("http://deploy:hunter2-secret@127.0.0.1:{port}/playbooks.git");
    let out = list_env(&repo, &url, &["--fetch-timeout", "2s"])
        .status(2)
        .stderr_contains(&format!(
            "error: cannot fetch playbooks from `http://127.0.0.1:{port}/playbooks.git` (host `127.0.0.1:{port}`) and nothing is cached"
        ))
        .run();
    assert!(!out.stderr.contains("hunter2") && !out.stderr.contains("deploy"));

    list(
        &repo,
        &format!("git://127.0.0.1:{port}/playbooks.git"),
        &["--offline"],
    )
    .status(2)
    .stderr_contains("`--offline`, but nothing is cached for `git://127.0.0.1:")
    .run();
}

#[test]
fn a_token_in_the_url_query_is_masked_like_user_info() {
    let repo = Repo::new();
    let port = free_port();
    let url =
        format!("http://127.0.0.1:{port}/playbooks.git?private_token=glpat-Zx81kq0Lr2mW&ref=main");
    let out = list_env(&repo, &url, &["--fetch-timeout", "2s"])
        .status(2)
        .stderr_contains(&format!(
            "`http://127.0.0.1:{port}/playbooks.git?private_token=***&ref=main`"
        ))
        .run();
    assert!(!out.stderr.contains("glpat-Zx81kq0Lr2mW"), "{}", out.stderr);
}

#[test]
fn concurrent_processes_share_one_cache_without_corrupting_it() {
    let repo = Repo::new();
    let (_, second, _) = three_versions(&repo);
    let server = HttpGit::start(&repo, None);
    let url = server.url();
    let run_all = |n: usize| -> Vec<String> {
        let children: Vec<_> = (0..n)
            .map(|_| {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_irctl"));
                cmd.args(["list", "--format", "json", "--repo", &url, "--cache-dir"])
                    .arg(repo.cache())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped());
                gitserver::git_env(&mut cmd, &repo.home());
                cmd.spawn().expect("spawn irctl")
            })
            .collect();
        children
            .into_iter()
            .map(|mut child| {
                wait_until(
                    Instant::now() + Duration::from_secs(60),
                    Duration::from_millis(20),
                    "irctl finished",
                    || child.try_wait().ok().flatten(),
                );
                let out = child.wait_with_output().expect("output");
                let stderr = String::from_utf8_lossy(&out.stderr);
                assert!(out.status.success(), "irctl failed: {stderr}");
                assert!(stderr.is_empty(), "no warning expected: {stderr}");
                String::from_utf8_lossy(&out.stdout).into_owned()
            })
            .collect()
    };
    // An empty cache, created by whichever process gets the lock first.
    for out in run_all(4) {
        assert!(out.contains(&second), "{out}");
    }
    repo.write("playbooks/d.yaml", &playbook("delta", "one"));
    let newer = repo.commit("add delta");
    repo.push();
    for out in run_all(4) {
        assert!(out.contains(&newer), "{out}");
    }
    let cache = std::fs::read_dir(repo.cache())
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "git"))
        .expect("a bare cache");
    gitserver::git(&cache, &repo.home(), &["fsck", "--strict"]);
}

#[test]
fn a_force_pushed_branch_replaces_the_cached_one() {
    let repo = Repo::new();
    repo.write("playbooks/a.yaml", &playbook("alpha", "one"));
    let base = repo.commit("add alpha");
    repo.write("playbooks/b.yaml", &playbook("bravo", "one"));
    repo.commit("add bravo (to be rewritten)");
    repo.push();
    let daemon = Daemon::start(&repo);
    let out = list(&repo, &daemon.url(), &[]).run();
    assert_eq!(names(&out), ["alpha", "bravo"]);

    repo.git(&["reset", "-q", "--hard", &base]);
    repo.write("playbooks/c.yaml", &playbook("charlie", "one"));
    let rewritten = repo.commit("add charlie instead");
    repo.push();
    let out = list(&repo, &daemon.url(), &[]).stderr("").run();
    assert_eq!(names(&out), ["alpha", "charlie"]);
    assert_eq!(commit(&out), rewritten);
}

#[test]
fn an_unknown_ref_says_what_exists() {
    let repo = Repo::new();
    three_versions(&repo);
    let daemon = Daemon::start(&repo);
    list(&repo, &daemon.url(), &["--ref", "v1.4.1"])
        .status(2)
        .stderr(&format!(
            "error: ref `v1.4.1` not found in `{}`; did you mean `v1.4.0`?\n",
            daemon.url()
        ))
        .run();
    list(&repo, &daemon.url(), &["--ref", "release-candidate"])
        .status(2)
        .stderr_contains("branches and tags: `main`, `next`, `v1.4.0`")
        .run();
    list(&repo, &daemon.url(), &["--repo-path", "runbooks"])
        .status(2)
        .stderr_contains("`runbooks` does not exist at commit")
        .run();
}

#[test]
fn credentials_never_appear_in_output_errors_or_timelines() {
    let token = "tok-s3cr3t-4242";
    let repo = Repo::new();
    three_versions(&repo);
    let server = HttpGit::start(&repo, Some(token));

    // A token from the environment; steps do not inherit it.
    let out = list(&repo, &server.url(), &[])
        .env("IRCTL_GIT_TOKEN", token)
        .run();
    assert_eq!(names(&out), ["alpha", "bravo"]);
    let env_step = playbook("bravo", "one").replace("echo one", "env");
    let out = irctl(&repo)
        .playbook("env.yaml", &env_step)
        .args(["run", "bravo", "--label", "alertname=bravo", "--verbose"])
        .arg("--state-dir")
        .arg(repo.root.path().join("state-env"))
        .env("IRCTL_GIT_TOKEN", token)
        .run();
    let printed = format!("{}{}", out.stdout, out.stderr);
    assert!(printed.contains("GIT_CONFIG_NOSYSTEM=1"), "{printed}");
    assert!(!printed.contains(token), "{printed}");

    // A password in the URL: the cache is shared (keyed without credentials),
    // and neither user nor password is shown anywhere.
    let with_pw = server.url_with("alice", token);
    let out = irctl(&repo)
        .args(["run", "alpha", "--label", "alertname=alpha", "--state-dir"])
        .arg(repo.root.path().join("state"))
        .args(["--cache-dir"])
        .arg(repo.cache())
        .env("IRCTL_REPO", &with_pw)
        .run();
    let timeline = std::fs::read_dir(repo.root.path().join("state/runs"))
        .expect("runs")
        .flatten()
        .map(|e| std::fs::read_to_string(e.path().join("timeline.jsonl")).expect("timeline"))
        .next()
        .expect("one run");
    assert!(timeline.contains(&format!("\"repo\":\"{}\"", server.url())));
    for text in [&out.stdout, &out.stderr, &timeline] {
        assert!(!text.contains(token) && !text.contains("alice"), "{text}");
    }

    // `--help` shows where the value comes from, never the value.
    let out = irctl(&repo)
        .args(["list", "--help"])
        .env("IRCTL_REPO", &with_pw)
        .stdout_contains("[env: IRCTL_REPO]")
        .run();
    assert!(!out.stdout.contains(token), "{}", out.stdout);

    // Wrong credentials: a loud fallback to the cache, no secret in it.
    let wrong = server.url_with("alice", "wrong-pass-777");
    let out = list_env(&repo, &wrong, &[])
        .stderr_contains("cannot fetch")
        .stderr_contains("USING CACHED PLAYBOOKS")
        .run();
    assert!(!out.stderr.contains("wrong-pass-777") && !out.stderr.contains("alice"));

    // And with nothing cached, exit 2 that names the host.
    let out = irctl(&repo)
        .args(["list", "--repo", &server.url(), "--cache-dir"])
        .arg(repo.root.path().join("empty-cache"))
        .env("IRCTL_GIT_TOKEN", "not-the-token-99")
        .status(2)
        .stderr_contains("nothing is cached: authentication failed for `http://127.0.0.1:")
        .stderr_contains("(tried `IRCTL_GIT_TOKEN`)")
        .run();
    assert!(!out.stderr.contains("not-the-token-99"), "{}", out.stderr);
    irctl(&repo)
        .args(["list", "--repo", &server.url(), "--cache-dir"])
        .arg(repo.root.path().join("empty-cache"))
        .status(2)
        .stderr_contains(
            "asks for credentials: set `IRCTL_GIT_TOKEN` or configure a git credential helper",
        )
        .run();
}

#[test]
fn history_lists_the_commits_that_changed_a_playbook() {
    let repo = Repo::new();
    repo.write("playbooks/a.yaml", &playbook("alpha", "one"));
    repo.commit("add alpha");
    repo.write("playbooks/b.yaml", &playbook("bravo", "one"));
    repo.commit("add bravo");
    repo.write("playbooks/a.yaml", &playbook("alpha", "two"));
    let latest = repo.commit("alpha: check twice");
    repo.push();

    let out = irctl(&repo)
        .args(["history", "alpha", "--format", "json", "--repo"])
        .arg(repo.served())
        .arg("--cache-dir")
        .arg(repo.cache())
        .run();
    let json = out.json();
    let subjects: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|c| c["subject"].as_str().expect("subject"))
        .collect();
    assert_eq!(subjects, ["alpha: check twice", "add alpha"]);
    assert_eq!(out.json()[0]["commit"], latest.as_str());
    assert_eq!(out.json()[0]["author"], "Ada Author");

    // In a worktree, the table; an unknown name gets a suggestion.
    let out = irctl(&repo)
        .args(["history", "alpha", "--playbooks"])
        .arg(repo.work().join("playbooks"))
        .run();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines[1].contains("COMMIT") && lines[1].contains("SUBJECT"));
    assert!(lines[3].starts_with(&format!(" {}", &latest[..8])));
    assert!(lines[3].contains("Ada Author") && lines[3].contains("alpha: check twice"));
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    irctl(&repo)
        .args(["history", "alpa", "--playbooks"])
        .arg(repo.work().join("playbooks"))
        .status(2)
        .stderr("error: no playbook named `alpa`; did you mean `alpha`?\n")
        .run();
}

#[test]
fn validate_changed_since_reports_only_changed_files() {
    let repo = Repo::new();
    repo.write("playbooks/old-broken.yaml", &broken("old-broken"));
    repo.write("playbooks/b.yaml", &playbook("bravo", "one"));
    repo.commit("base");
    repo.git(&["checkout", "-q", "-b", "feature"]);
    repo.write("playbooks/c.yaml", &playbook("charlie", "one"));
    repo.commit("add charlie");
    repo.push();
    let playbooks = repo.work().join("playbooks");

    // The whole set has an error, but not in a changed file.
    irctl(&repo)
        .args(["validate", "--changed-since", "main", "--playbooks"])
        .arg(&playbooks)
        .stderr("note: reporting findings for 1 of 3 playbook files (changed since `main`)\n1 playbook valid\n")
        .run();
    irctl(&repo)
        .args(["validate", "--playbooks"])
        .arg(&playbooks)
        .status(1)
        .stderr_contains("old-broken.yaml")
        .run();
    // An uncommitted change in the worktree counts.
    repo.write("playbooks/b.yaml", &broken("bravo"));
    let out = irctl(&repo)
        .args([
            "validate",
            "--changed-since",
            "main",
            "--format",
            "json",
            "--playbooks",
        ])
        .arg(&playbooks)
        .status(1)
        .run();
    let files: Vec<String> = out
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|d| d["file"].as_str().expect("file").to_string())
        .collect();
    assert!(
        files.iter().all(|f| f.ends_with("playbooks/b.yaml")),
        "{files:?}"
    );
    assert!(!files.is_empty());

    // From a Git source: the diff is between the two refs.
    irctl(&repo)
        .args(["validate", "--repo"])
        .arg(repo.served())
        .args(["--ref", "feature", "--changed-since", "main", "--cache-dir"])
        .arg(repo.cache())
        .stderr_contains("1 of 3 playbook files")
        .stderr_contains("1 playbook valid")
        .run();
    irctl(&repo)
        .args(["validate", "--changed-since", "mian", "--playbooks"])
        .arg(&playbooks)
        .status(2)
        .stderr_contains("ref `mian` not found")
        .run();
}

#[test]
fn a_worktree_directory_records_head_and_dirtiness() {
    let repo = Repo::new();
    repo.write("playbooks/a.yaml", &playbook("alpha", "one"));
    repo.write("playbooks/b.yaml", &playbook("bravo", "one"));
    let head = repo.commit("two playbooks");
    repo.write("playbooks/b.yaml", &playbook("bravo", "edited"));
    let out = irctl(&repo)
        .args(["list", "--format", "json", "--playbooks"])
        .arg(repo.work().join("playbooks"))
        .run();
    let json = out.json();
    for (i, dirty) in [(0, false), (1, true)] {
        let p = &json[i]["provenance"];
        assert_eq!(p["commit"], head.as_str());
        assert_eq!(p["ref"], "main");
        assert_eq!(p["dirty"], dirty, "{p}");
    }
}

/// The one bare repository (and its lock file) in `repo`'s cache.
fn cache_files(repo: &Repo) -> (std::path::PathBuf, std::path::PathBuf) {
    let git_dir = std::fs::read_dir(repo.cache())
        .expect("cache dir")
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "git"))
        .expect("a bare cache");
    let lock = git_dir.with_extension("lock");
    (git_dir, lock)
}

#[test]
fn a_fetch_waits_for_the_cache_lock_and_survives_a_killed_one() {
    let repo = Repo::new();
    three_versions(&repo);
    let daemon = Daemon::start(&repo);
    let url = daemon.url();
    list(&repo, &url, &[]).run();
    let (git_dir, lock_path) = cache_files(&repo);

    // Another process holds the cache: this one gives up at its deadline.
    let holder = std::fs::File::options()
        .write(true)
        .open(&lock_path)
        .expect("open lock");
    holder.lock().expect("take lock");
    list(&repo, &url, &["--fetch-timeout", "500ms"])
        .stderr_contains("another irctl was still fetching into the cache")
        .stderr_contains("USING CACHED PLAYBOOKS")
        .run();
    drop(holder);

    // A fetch killed midway leaves Git lock files; the next one clears them.
    std::fs::write(git_dir.join("refs/heads/main.lock"), "").expect("stale lock");
    repo.write("playbooks/d.yaml", &playbook("delta", "one"));
    let newer = repo.commit("add delta");
    repo.push();
    let out = list(&repo, &url, &[]).stderr("").run();
    assert_eq!(commit(&out), newer);
}

/// A run from Git records the commit; when the playbook has changed since,
/// `resume` names the commit that ran, and resuming at that ref works.
#[test]
fn a_run_from_git_resumes_at_the_commit_that_ran() {
    let repo = Repo::new();
    let marker = repo.root.path().join("fixed");
    let state = repo.root.path().join("state");
    let step = format!("test -f {}", marker.display());
    let text = |title: &str| {
        format!(
            "version: 1\nname: t\ntitle: {title}\nmatch:\n  labels: ['alertname=\"t\"']\ndrill:\n  incident: {{ title: d, labels: {{ alertname: t }} }}\nsteps:\n  - id: check\n    shell: \"{step}\"\n"
        )
    };
    repo.write("playbooks/t.yaml", &text("first"));
    let first = repo.commit("first");
    repo.push();
    let url = repo.file_url();
    // The default cache ($XDG_CACHE_HOME/irctl), which `postmortem` reads too.
    let with_source = |t: Test| {
        t.env("IRCTL_STATE_DIR", state.to_str().unwrap())
            .args(["--repo", &url])
    };
    let out = with_source(irctl(&repo).args(["run", "--label", "alertname=t"]))
        .status(1)
        .run();
    let run_id = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|l| l.split_whitespace().next())
        .expect("run id")
        .to_string();

    repo.write("playbooks/t.yaml", &text("second"));
    repo.commit("second");
    repo.push();
    with_source(irctl(&repo).args(["resume", &run_id]))
        .status(2)
        .stderr_contains(&format!(
            "`--ref {first}` to resume with the version that ran"
        ))
        .run();

    // The postmortem finds the remote's commits in irctl's cache.
    let runs = irctl(&repo)
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .args(["runs", "--format", "json"])
        .run()
        .json();
    let incident = runs[0]["incident_id"].as_str().unwrap().to_string();
    irctl(&repo)
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .args(["postmortem", "--incident", &incident])
        .stdout_contains(&format!("at `{first}` in {url}"))
        .stdout_contains("  - changed since by `")
        .stdout_contains(" second (")
        .run();

    std::fs::write(&marker, "").unwrap();
    with_source(irctl(&repo).args(["resume", &run_id, "--ref", &first]))
        .stdout_contains(&format!("run {run_id} succeeded"))
        .run();
    irctl(&repo)
        .env("IRCTL_STATE_DIR", state.to_str().unwrap())
        .args(["timeline", "verify", &run_id])
        .run();
}

#[test]
fn a_credential_in_repo_on_the_command_line_is_refused_before_any_connection() {
    let token = "tok-in-argv-5150";
    let repo = Repo::new();
    three_versions(&repo);
    let server = HttpGit::start(&repo, Some(token));
    let with_pw = server.url_with("alice", token);
    let with_query = format!("{}?private_token={token}", server.url());
    for (url, what) in [(&with_pw, "a password"), (&with_query, "an access token")] {
        for args in [
            &["list"][..],
            &["run", "alpha", "--label", "alertname=alpha"][..],
        ] {
            let out = irctl(&repo)
                .args(args)
                .args(["--repo", url.as_str(), "--cache-dir"])
                .arg(repo.cache())
                .status(2)
                .stderr_contains(&format!("error: `--repo` carries {what}"))
                .stderr_contains("set the URL in `IRCTL_REPO` instead")
                .stderr_contains("`IRCTL_GIT_TOKEN`")
                .run();
            assert!(!out.stderr.contains(token), "{}", out.stderr);
        }
    }
    assert_eq!(server.requests(), Vec::<String>::new(), "irctl connected");
    assert!(!repo.cache().exists(), "irctl touched the cache");

    // From the environment the same URLs are used: the password logs in;
    // the one with a query token reaches the server (which wants Basic
    // auth), and its token is masked in the error.
    let out = list_env(&repo, &with_query, &[])
        .status(2)
        .stderr_contains("playbooks.git?private_token=***` asks for credentials")
        .run();
    assert!(!out.stderr.contains(token), "{}", out.stderr);
    assert!(!server.requests().is_empty(), "IRCTL_REPO was not used");
    let out = list_env(&repo, &with_pw, &[]).run();
    assert_eq!(names(&out), ["alpha", "bravo"]);
    // And the token in `IRCTL_GIT_TOKEN`, with a clean URL on the command line.
    let out = list(&repo, &server.url(), &[])
        .env("IRCTL_GIT_TOKEN", token)
        .run();
    assert_eq!(names(&out), ["alpha", "bravo"]);
}

#[test]
fn a_huge_blob_is_refused_by_its_size_naming_the_file() {
    let repo = Repo::new();
    repo.write("playbooks/a.yaml", &playbook("alpha", "one"));
    // 50 MB of zeros, sparse on disk; Git stores it compressed to little.
    let huge = std::fs::File::create(repo.work().join("playbooks/huge.yaml")).expect("create");
    huge.set_len(50 * 1024 * 1024).expect("grow");
    drop(huge);
    repo.commit("add a huge file");
    repo.push();
    let out = irctl(&repo)
        .args([
            "validate",
            "--format",
            "json",
            "--repo",
            &repo.file_url(),
            "--cache-dir",
        ])
        .arg(repo.cache())
        .status(1)
        .run();
    let findings = out.json();
    let findings = findings.as_array().expect("array");
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert_eq!(findings[0]["file"], "playbooks/huge.yaml");
    assert_eq!(
        findings[0]["message"],
        "`playbooks/huge.yaml` is 52428800 bytes, over the 2 MiB limit for a playbook"
    );
    // The other playbooks still load.
    let out = list(&repo, &repo.file_url(), &[]).run();
    assert_eq!(names(&out), ["alpha"]);
}
