//! `irctl graph`: a playbook's DAG as Mermaid or DOT, or a run's DAG
//! coloured by what happened ([`irctl::graph`] draws,
//! [`irctl::record::diagram`] reads the run and the playbook version it ran).

use std::path::{Path, PathBuf};

use super::context::Context;
use crate::cli::{GraphArgs, GraphFormat};
use irctl::graph::{Graph, dot, mermaid};
use irctl::playbook::{Playbook, unknown_playbook};
use irctl::record::{Scope, diagram};

/// Runs `graph`.
pub fn run(args: GraphArgs, ctx: &Context) -> anyhow::Result<u8> {
    let graph = match (&args.run, &args.playbook) {
        (Some(run), _) => run_graph(run, &args, ctx)?,
        (None, Some(name)) => Graph::of_playbook(&playbook(name, &args, ctx)?),
        (None, None) => anyhow::bail!("name a playbook (`irctl graph PLAYBOOK`) or `--run RUN_ID`"),
    };
    if let Some(note) = &graph.note {
        ctx.ui.warn(note);
    }
    let text = match args.format {
        GraphFormat::Mermaid => mermaid::render(&graph),
        GraphFormat::Dot => dot::render(&graph),
    };
    ctx.out().line(text.trim_end())?;
    Ok(0)
}

/// The playbook `name` names: a file path (an existing file, or anything
/// ending in `.yaml`/`.yml`), else a name in the playbook source.
fn playbook(name: &str, args: &GraphArgs, ctx: &Context) -> anyhow::Result<Playbook> {
    let path = Path::new(name);
    if path.is_file() || name.ends_with(".yaml") || name.ends_with(".yml") {
        let loaded = ctx.load_source(&args.source, &[PathBuf::from(name)])?;
        ctx.warn_all(&loaded.warnings);
        return match loaded.set.playbooks.into_iter().next() {
            Some(p) => Ok(p),
            None => {
                anyhow::bail!("`{name}` is not a valid playbook; `irctl validate {name}` shows why")
            }
        };
    }
    let set = ctx.load_playbooks(&args.source)?;
    match set.get(name) {
        Some(p) => Ok(p.clone()),
        None => Err(unknown_playbook(
            name,
            set.playbooks.iter().map(|p| p.name.as_str()),
        )),
    }
}

/// The DAG of the run `query` names, with the edges of the playbook version
/// it ran, else of the playbook by that name in the source (said so), else
/// without edges (said why).
fn run_graph(query: &str, args: &GraphArgs, ctx: &Context) -> anyhow::Result<Graph> {
    let id = irctl::record::resolve_run(ctx.state_dir(), query)?;
    let store = ctx.open_store(Scope::Run(&id))?;
    let run = store.run(&id)?;
    let Some(started) = run.started() else {
        return Ok(diagram::run_graph(
            run,
            None,
            Some(format!(
                "run `{id}` has no `run_started`; its steps' `needs` are not drawn"
            )),
        ));
    };
    let why = match diagram::playbook_at(&started.provenance) {
        Ok(p) => return Ok(diagram::run_graph(run, Some(&p), None)),
        Err(why) => why,
    };
    let current = ctx
        .load_playbooks(&args.source)
        .ok()
        .and_then(|set| set.get(&started.playbook).cloned());
    Ok(match current {
        // The same file, read from another directory than the run's.
        Some(p) if p.provenance.blob == started.provenance.blob => {
            diagram::run_graph(run, Some(&p), None)
        }
        Some(p) => diagram::run_graph(
            run,
            Some(&p),
            Some(format!(
                "the playbook changed since run `{id}`: the `needs` drawn are those of the current `{}`, not of the version that ran",
                p.file()
            )),
        ),
        None => diagram::run_graph(run, None, Some(why)),
    })
}
