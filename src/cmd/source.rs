//! Turns the source flags into a loaded playbook source, printing its
//! warnings (a failed fetch, the cached commit used instead).

use std::path::PathBuf;

use crate::cli::SourceArgs;
use crate::ui::Ui;
use irctl::source::{self, GitSpec, Loaded, Spec};

/// What the flags ask for: `--repo` wins over `--playbooks` and `paths`.
pub fn spec(args: &SourceArgs, paths: &[PathBuf]) -> anyhow::Result<Spec> {
    match &args.repo {
        Some(repo) => {
            if !paths.is_empty() {
                anyhow::bail!(
                    "PATH arguments cannot be combined with `--repo`; choose the folder with `--repo-path`"
                );
            }
            Ok(Spec::Git(GitSpec {
                repo: repo.clone(),
                git_ref: args.git_ref.clone().filter(|r| !r.is_empty()),
                repo_path: args.repo_path.clone(),
                cache_dir: args.cache_dir.clone(),
                offline: args.offline,
                fetch_timeout: args.fetch_timeout,
            }))
        }
        None => {
            if args.git_ref.as_deref().is_some_and(|r| !r.is_empty()) {
                anyhow::bail!("`--ref` (or `IRCTL_REF`) needs `--repo` (or `IRCTL_REPO`)");
            }
            Ok(Spec::Dir(if paths.is_empty() {
                vec![args.playbooks.clone()]
            } else {
                paths.to_vec()
            }))
        }
    }
}

/// Reads (not yet checks) the playbook files the flags name, printing the
/// loader's warnings.
pub fn read(args: &SourceArgs, paths: &[PathBuf], ui: &Ui) -> anyhow::Result<source::Read> {
    let read = source::read(&spec(args, paths)?)?;
    for w in &read.warnings {
        ui.warn(w);
    }
    Ok(read)
}

/// Loads (reads and checks) the playbooks the flags name, printing the
/// loader's warnings.
pub fn load(args: &SourceArgs, paths: &[PathBuf], ui: &Ui) -> anyhow::Result<Loaded> {
    Ok(read(args, paths, ui)?.load())
}
