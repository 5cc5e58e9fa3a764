//! The one per-invocation [`Context`]: what every command handler needs
//! beyond its own arguments — where to print, the state directory, who is
//! acting, the clock, the secrets — worked out once in `dispatch`, so no
//! handler reads the environment or borrows another handler's helpers.
//! Also here: loading playbooks and the incident the way every command
//! does, and [`Out`], the redacting printer of the record commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::{Command, HandoffCommand, IncidentArgs, SourceArgs, StateArgs, TimelineCommand};
use crate::ui::Ui;
use irctl::catalog::Catalog;
use irctl::clock::{Clock, InvalidNow};
use irctl::incident::{self, Incident, Mapping};
use irctl::playbook::index::Index;
use irctl::playbook::{Playbook, PlaybookSet};
use irctl::record::{Scope, Store};
use irctl::secret::{self, Redactor, Secret};
use irctl::source::{self, GitSpec, Loaded, Spec};
use irctl::timeline::ChainKey;
use irctl::timeline::chain::KEY_SECRET;

/// What one invocation of irctl works with.
pub struct Context {
    /// Where output goes.
    pub ui: Ui,
    state_dir: PathBuf,
    actor: String,
    clock: Result<Clock, InvalidNow>,
    secrets_file: Option<PathBuf>,
    env_secrets: Vec<Secret>,
}

impl Context {
    /// The context of `command`. A bad `IRCTL_NOW` is refused here, with one
    /// error, for the commands that read the clock; any other command
    /// (`run` above all) never sees it.
    pub fn new(ui: Ui, command: &Command) -> anyhow::Result<Context> {
        let clock = Clock::from_env();
        if reads_clock(command) {
            clock.clone()?;
        }
        let state_dir = state_args(command)
            .and_then(|s| s.state_dir.clone())
            .unwrap_or_else(irctl::engine::default_state_dir);
        let actor = author_flag(command)
            .filter(|a| !a.trim().is_empty())
            .map(str::to_string)
            .unwrap_or_else(irctl::env::actor);
        let secrets_file = match command {
            Command::Run(a) => a.exec.secrets_file.clone(),
            Command::Drill(a) => a.exec.secrets_file.clone(),
            Command::Resume(a) => a.exec.secrets_file.clone(),
            Command::Timeline(a) => match &a.command {
                Some(TimelineCommand::Verify(v)) => v.secrets_file.clone(),
                None => None,
            },
            Command::Serve(a) => a.secrets_file.clone(),
            Command::Handoff(a) => match &a.command {
                Some(HandoffCommand::Remind(r)) => r.secrets_file.clone(),
                Some(HandoffCommand::Accept(_)) => None,
                None => a.secrets_file.clone(),
            },
            _ => None,
        };
        let env_secrets = irctl::env::secret_values()
            .into_iter()
            .map(Secret::new)
            .collect();
        Ok(Context {
            ui,
            state_dir,
            actor,
            clock,
            secrets_file,
            env_secrets,
        })
    }

    /// `--secrets-file`, for the commands that take it.
    pub fn secrets_file(&self) -> Option<&Path> {
        self.secrets_file.as_deref()
    }

    /// The state directory: `--state-dir`, `IRCTL_STATE_DIR`, or the default.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Who is acting: `--author`, else `IRCTL_ACTOR`, else the login.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The clock of the commands that ask for the current time: fixed by
    /// `IRCTL_NOW` when set, else the system's.
    pub fn clock(&self) -> Result<Clock, InvalidNow> {
        self.clock.clone()
    }

    /// The clock that stamps runs: always the system's, so a timeline
    /// records what really happened, whatever `IRCTL_NOW` says.
    pub fn run_clock(&self) -> Clock {
        Clock::System
    }

    /// The values of the secrets `playbook` declares, from `--secrets-file`
    /// or the environment.
    pub fn secrets(&self, playbook: &Playbook) -> anyhow::Result<BTreeMap<String, Secret>> {
        self.resolve_secrets(&playbook.secrets)
    }

    /// The values of the secrets `names`; with no names, only checks that a
    /// `--secrets-file` given reads and parses.
    pub fn resolve_secrets(&self, names: &[String]) -> anyhow::Result<BTreeMap<String, Secret>> {
        secret::resolve(names, self.secrets_file.as_deref())
    }

    /// The timeline key (the secret `IRCTL_TIMELINE_KEY`, from
    /// `--secrets-file` or the environment), when one is set.
    pub fn timeline_key(&self) -> anyhow::Result<Option<ChainKey>> {
        secret::resolve_optional(KEY_SECRET, self.secrets_file.as_deref())?
            .map(ChainKey::new)
            .transpose()
    }

    /// What redacts a record written from `incident` outside a run: the
    /// payload's own credentials (PagerDuty routing keys) and the
    /// environment's secrets.
    pub fn payload_redactor(&self, incident: &Incident) -> Redactor {
        let secrets: Vec<_> = incident
            .credentials()
            .into_iter()
            .chain(self.env_secrets.iter().cloned())
            .collect();
        Redactor::new(&secrets)
    }

    /// A redactor for `extra` and the secrets irctl can see in its environment.
    pub fn redactor_with(&self, extra: &BTreeMap<String, Secret>) -> Redactor {
        Redactor::new(extra.values().chain(self.env_secrets.iter()))
    }

    /// A redactor for the secrets irctl can see in its environment
    /// (`IRCTL_SECRET_*`, the form `irctl run` reads them in). Timelines are
    /// redacted when written; this second pass covers what people type (a
    /// note that pastes a token) and any value a run could not know about.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(&self.env_secrets)
    }

    /// The redacting printer of the record commands.
    pub fn out(&self) -> Out<'_> {
        self.out_redacting(self.redactor())
    }

    /// A printer that redacts with `redactor` (say, one that also knows an
    /// alert payload's credentials) instead of [`Context::redactor`].
    pub fn out_redacting(&self, redactor: Redactor) -> Out<'_> {
        Out {
            ui: &self.ui,
            redactor,
        }
    }

    /// Reads the runs in `scope` and prints the readers' warnings (torn or unreadable lines).
    pub fn open_store(&self, scope: Scope<'_>) -> anyhow::Result<Store> {
        let store = Store::open_scoped(&self.state_dir, scope)?;
        self.warn_all(&store.warnings);
        Ok(store)
    }

    /// The exact id of the incident `query` names: its id, file-safe id,
    /// log directory name or short id. An ambiguous short id is an error;
    /// an unknown query is one too when `strict` (suggesting near ids), else
    /// it is returned as given for the command's own "nothing recorded".
    pub fn incident_id(&self, query: &str, strict: bool) -> anyhow::Result<String> {
        match irctl::record::resolve_incident(&self.state_dir, query) {
            Ok(id) => Ok(id),
            Err(e)
                if !strict
                    && matches!(
                        e.downcast_ref::<irctl::record::UnknownIncident>(),
                        Some(irctl::record::UnknownIncident::Unknown { .. })
                    ) =>
            {
                Ok(query.to_string())
            }
            Err(e) => Err(e),
        }
    }

    /// Prints each warning once.
    pub fn warn_all(&self, warnings: &[String]) {
        let mut seen = std::collections::BTreeSet::new();
        for w in warnings {
            if seen.insert(w) {
                self.ui.warn(w);
            }
        }
    }

    /// Loads (reads and checks) the playbook files the flags name, printing
    /// the loader's warnings.
    pub fn load_source(&self, args: &SourceArgs, paths: &[PathBuf]) -> anyhow::Result<Loaded> {
        Ok(self.read_source(args, paths)?.load())
    }

    /// Loads playbooks for commands that use them (not `validate`): files
    /// with errors are skipped with one warning, so a broken playbook
    /// elsewhere in the repo never blocks the one a responder needs at 3 a.m.
    pub fn load_playbooks(&self, args: &SourceArgs) -> anyhow::Result<PlaybookSet> {
        Ok(self.load_playbooks_and_mappings(args)?.0)
    }

    /// [`Context::load_playbooks`], with the source's payload mappings that
    /// check cleanly (`irctl serve` gives each its endpoint).
    pub fn load_playbooks_and_mappings(
        &self,
        args: &SourceArgs,
    ) -> anyhow::Result<(PlaybookSet, Vec<Mapping>)> {
        let (loaded, mappings) = self.load_checked(args)?;
        Ok((loaded.set, mappings))
    }

    /// [`Context::load_playbooks`], with the source's teams file when it
    /// checks cleanly (how `irctl drill` reaches a drill's teams).
    pub fn load_playbooks_and_teams(
        &self,
        args: &SourceArgs,
    ) -> anyhow::Result<(PlaybookSet, Option<irctl::teams::Teams>)> {
        let (loaded, _) = self.load_checked(args)?;
        Ok((loaded.set, loaded.teams))
    }

    /// Every playbook of `--playbooks` or `--repo` checked, with the
    /// source's mappings that check cleanly; broken files are warned about
    /// and skipped, but a source with no valid playbook is an error.
    fn load_checked(&self, args: &SourceArgs) -> anyhow::Result<(source::Loaded, Vec<Mapping>)> {
        let read = self.read_named_source(args)?;
        let origin = describe_origin(args, &read);
        let (mappings, _) = read.mappings();
        let loaded = read.load();
        self.warn_broken(&loaded.set.broken_files());
        if loaded.set.playbooks.is_empty() {
            anyhow::bail!("no valid playbooks in {origin}");
        }
        Ok((loaded, mappings))
    }

    /// Summarises the playbooks for `match` and `run`: only the chosen ones
    /// are then checked in full, with the same skip-broken-files rule as
    /// [`Context::load_playbooks`].
    pub fn load_index(&self, args: &SourceArgs) -> anyhow::Result<Indexed> {
        let mut read = self.read_named_source(args)?;
        let origin = describe_origin(args, &read);
        // Without any cache directory the index still works, it just saves nothing.
        let cache = source::cache_dir(args.cache_dir.as_deref()).ok();
        let index = Index::build(std::mem::take(&mut read.sources), cache.as_deref());
        let (mappings, broken) = read.mappings();
        self.warn_broken(&[index.broken.as_slice(), &broken].concat());
        if index.entries.is_empty() {
            anyhow::bail!("no valid playbooks in {origin}");
        }
        Ok(Indexed {
            index,
            mappings,
            read,
        })
    }

    /// Reads (not yet checks) the playbook files the flags name, printing
    /// the loader's warnings.
    fn read_source(&self, args: &SourceArgs, paths: &[PathBuf]) -> anyhow::Result<source::Read> {
        let read = source::read(&source_spec(args, paths)?)?;
        for w in &read.warnings {
            self.ui.warn(w);
        }
        Ok(read)
    }

    /// [`Context::read_source`] of `--playbooks` or `--repo`, with the
    /// directory named in the error.
    fn read_named_source(&self, args: &SourceArgs) -> anyhow::Result<source::Read> {
        self.read_source(args, &[]).map_err(|e| match &args.repo {
            // The Git loader names the repository itself, without credentials.
            Some(_) => e,
            None => e.context(format!(
                "cannot load playbooks from `{}`",
                args.playbooks.display()
            )),
        })
    }

    /// The service catalog `--catalog` names, else the one beside the
    /// playbooks, printing its warnings; `None` when there is none. For
    /// `run` (`strict` false) a catalog that cannot be read is a warning:
    /// ownership must never keep a playbook from running.
    pub fn load_catalog(
        &self,
        args: &SourceArgs,
        paths: &[PathBuf],
        strict: bool,
    ) -> anyhow::Result<Option<Catalog>> {
        let request = irctl::catalog::Request {
            playbooks: source_spec(args, paths)?,
            catalog: args.catalog.clone().filter(|c| !c.is_empty()),
        };
        let catalog = match irctl::catalog::load(&request) {
            Ok(c) => c,
            Err(e) if !strict => {
                self.ui.warn(&format!(
                    "the service catalog was not read, so the incident has no owner: {e:#}"
                ));
                return Ok(None);
            }
            Err(e) => return Err(e.context("cannot read the service catalog")),
        };
        if let Some(c) = &catalog {
            self.warn_all(&c.warnings);
            let errors = c.diagnostics.iter().filter(|d| d.is_error()).count();
            if errors > 0 && !strict {
                self.ui.warn(&format!(
                    "the service catalog {} has {errors} error{}; `irctl validate` shows them",
                    c.origin,
                    if errors == 1 { "" } else { "s" }
                ));
            }
        }
        Ok(catalog)
    }

    fn warn_broken(&self, broken: &[impl AsRef<str>]) {
        if !broken.is_empty() {
            self.ui.warn(&format!(
                "{} playbook file{} with errors skipped ({}); run `irctl validate` for details",
                broken.len(),
                if broken.len() == 1 { "" } else { "s" },
                broken
                    .iter()
                    .map(AsRef::as_ref)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
}

/// Whether the command asks for the current time, so `IRCTL_NOW` must be
/// valid; `run` and the engine always use the system clock, and a stray
/// variable must never block a run. (`drill` also takes `--now`, and checks
/// its clock itself.)
fn reads_clock(command: &Command) -> bool {
    matches!(
        command,
        Command::Runs(_)
            | Command::Stats(_)
            | Command::Note(_)
            | Command::Resolve(_)
            | Command::Ingest(_)
            | Command::Postmortem(_)
            | Command::Handoff(_)
    )
}

/// The state directory flags of `command`, when it has any.
fn state_args(command: &Command) -> Option<&StateArgs> {
    match command {
        Command::Run(a) => Some(&a.exec.state),
        Command::Drill(a) => Some(&a.exec.state),
        Command::Resume(a) => Some(&a.exec.state),
        Command::Serve(a) => Some(&a.state),
        Command::Runs(a) => Some(&a.state),
        Command::Timeline(a) => match &a.command {
            Some(TimelineCommand::Verify(v)) => Some(&v.state),
            None => Some(&a.state),
        },
        Command::Note(a) => Some(&a.state),
        Command::Resolve(a) => Some(&a.state),
        Command::Ingest(a) => Some(&a.state),
        Command::Postmortem(a) => Some(&a.state),
        Command::Stats(a) => Some(&a.state),
        Command::Approve(a) => Some(&a.state),
        Command::Graph(a) => Some(&a.state),
        Command::Handoff(a) => match &a.command {
            Some(HandoffCommand::Accept(x)) => Some(&x.state),
            Some(HandoffCommand::Remind(x)) => Some(&x.state),
            None => Some(&a.state),
        },
        _ => None,
    }
}

/// `--author`, for the commands that take it.
fn author_flag(command: &Command) -> Option<&str> {
    match command {
        Command::Note(a) => a.author.as_deref(),
        Command::Resolve(a) => a.author.as_deref(),
        Command::Approve(a) => a.as_name.as_deref(),
        Command::Handoff(a) => match &a.command {
            Some(HandoffCommand::Accept(x)) => x.by.as_deref(),
            Some(HandoffCommand::Remind(_)) => None,
            None => a.by.as_deref(),
        },
        _ => None,
    }
}

/// What the flags ask for: `--repo` wins over `--playbooks` and `paths`.
pub fn source_spec(args: &SourceArgs, paths: &[PathBuf]) -> anyhow::Result<Spec> {
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
                pin_commit: args.pin_commit.clone(),
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

fn describe_origin(args: &SourceArgs, read: &source::Read) -> String {
    read.describe()
        .unwrap_or_else(|| format!("`{}`", args.playbooks.display()))
}

/// Playbooks summarised for the commands that match before they run
/// (`match`, `run`), and the source they came from.
pub struct Indexed {
    /// What matching needs of every valid playbook.
    pub index: Index,
    /// The source's payload mappings (`sources/*.yaml`) that check cleanly.
    pub mappings: Vec<Mapping>,
    read: source::Read,
}

impl Indexed {
    /// The playbooks named `names`, checked in full, with their provenance.
    pub fn load(&mut self, names: &[&str]) -> PlaybookSet {
        let mut set = self.index.load(names);
        self.read.stamp(&mut set);
        self.read.bind_teams(&mut set);
        set
    }

    /// The source's teams file, when it checks cleanly.
    pub fn teams(&self) -> Option<irctl::teams::Teams> {
        self.read.teams().0
    }
}

/// Builds the incident from `--incident` (detected among the built-in
/// formats and the playbook source's `mappings`) or the ad hoc flags;
/// `clock` says when an ad hoc incident started.
pub fn read_incident(
    args: &IncidentArgs,
    clock: Clock,
    mappings: &[Mapping],
) -> anyhow::Result<Incident> {
    if let Some(path) = &args.incident {
        let format = args.incident_format.as_deref();
        return Ok(incident::read_with(path, format, mappings)?);
    }
    if args.labels.is_empty() && args.title.is_none() {
        anyhow::bail!(
            "no incident given: pass `--incident FILE` (or `-` for stdin), or describe one with `--label key=value`"
        );
    }
    let labels = args
        .labels
        .iter()
        .map(|l| {
            incident::parse_label_flag(l).map_err(|e| anyhow::anyhow!("invalid `--label {l}`: {e}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(incident::from_flags(
        &labels,
        args.title.as_deref(),
        args.severity.as_deref(),
        clock,
    ))
}

/// `incident` as answered by `playbook`, carrying who owns it and what it
/// impacts (`incident.owner`, `incident.impacted`) when there is a catalog,
/// and how the owner is reached by `teams` (no channels without them).
pub fn with_ownership(
    incident: &Incident,
    catalog: Option<&Catalog>,
    playbook: &Playbook,
    teams: Option<&irctl::teams::Teams>,
) -> Option<Incident> {
    Some(catalog?.own(incident, &playbook.provenance.path, teams))
}

/// Reads an alert payload (`-` is stdin), in `format` when one is forced.
pub fn read_incident_file(path: &Path, format: Option<&str>) -> anyhow::Result<Incident> {
    let format = format
        .map(|name| {
            name.parse::<incident::IncidentFormat>()
                .map_err(|e| anyhow::anyhow!("{e}"))
        })
        .transpose()?;
    Ok(incident::read(path, format)?)
}

/// Prints `text` to stdout after redacting every secret irctl can see.
pub struct Out<'a> {
    ui: &'a Ui,
    redactor: Redactor,
}

impl Out<'_> {
    /// `text`, redacted, with control characters and bidi overrides made
    /// [visible](crate::ui::visible): titles and notes come from alert
    /// payloads and people, and must not drive the terminal (colours,
    /// cursor moves, OSC links) or a Markdown viewer.
    pub fn redact(&self, text: &str) -> String {
        crate::ui::visible(&self.redactor.redact(text)).into_owned()
    }

    /// A JSON document, redacted, with nothing hidden left raw in its
    /// strings (see [`crate::ui::json_visible`]); still the same JSON.
    pub fn redact_json(&self, text: &str) -> String {
        crate::ui::json_visible(&self.redactor.redact(text)).into_owned()
    }

    /// Prints one redacted line.
    pub fn line(&self, text: &str) -> anyhow::Result<()> {
        self.ui.outln(&self.redact(text))?;
        Ok(())
    }

    /// Prints one redacted JSON document.
    pub fn json(&self, text: &str) -> anyhow::Result<()> {
        self.ui.json(&self.redactor.redact(text))?;
        Ok(())
    }
}
