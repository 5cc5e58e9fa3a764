//! irctl: playbook-as-code incident response.
//!
//! The modules form layers, and each uses only the layers below it:
//!
//! - **operations**: [`lifecycle`] decides whether a payload starts a run
//!   (resolutions, repeats, episodes); [`engine`] runs a playbook's steps as a DAG, writing the
//!   [`timeline`]; [`playtest`] runs playbook tests through it with canned
//!   results; [`drill`] runs drills, decides which are due, lints and reports
//!   them; [`validation`] gathers everything `irctl validate` finds; [`record`] reads runs and incident logs back after the fire,
//!   verifies their hash chains, and builds postmortems and stats; [`graph`]
//!   draws a playbook's DAG and an incident's Gantt chart; [`handoff`]
//!   hands an incident to another team with its whole story; [`serve`]
//!   receives alert webhooks, stores them durably and starts their runs;
//! - **model**: [`playbook`] (the file format, its compiled [`playbook::matcher`]s,
//!   loading and validation, with [`diagnostic::Diagnostic`]s at file, line and
//!   column); [`matching`] chooses the playbook for an incident and explains
//!   why; [`incident`] turns an alert payload into one [`incident::Incident`];
//!   [`source`] reads playbooks from a directory or a cached Git repository at
//!   a ref, with provenance and history; [`teams`] says how each team is
//!   reached (`teams.yaml`); [`catalog`] reads the Backstage
//!   service catalog and CODEOWNERS beside them and decides who owns an
//!   incident and what it impacts;
//! - **base**: [`timeline`], [`secret`], [`template`] (rendering with
//!   context-aware escaping), [`yaml`], [`diagnostic`], [`report`] (human text, JSON, GitHub
//!   workflow commands, JUnit XML), [`lock`], [`process`] (finding a
//!   step's processes however they detach), [`clock`],
//!   [`env`](mod@env) (the only reader of the environment), [`id`] (`StepId`,
//!   `RunId`), and the small helpers
//!   [`duration`], [`schedule`], [`memo`], [`capped`] and [`fsutil`] (writing
//!   files whole, telling a full disk apart).
//!
//! The binary (`src/main.rs` → `src/cli/` → `src/cmd/`) parses arguments,
//! calls one operation and prints through `src/ui.rs`, the only code that
//! touches stdout and stderr.

// The library never prints: it returns values and text, and the binary's `Ui`
// decides where they go (see also `clippy.toml`).
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod approval;
pub mod capped;
pub mod catalog;
pub mod clock;
pub mod diagnostic;
pub mod drill;
pub mod duration;
pub mod engine;
pub mod env;
pub mod fsutil;
pub mod graph;
pub mod handoff;
pub mod id;
pub mod incident;
pub mod lifecycle;
pub mod lock;
pub mod matching;
pub mod memo;
pub mod playbook;
pub mod playtest;
pub mod process;
pub mod record;
pub mod report;
pub mod schedule;
pub mod secret;
pub mod serve;
pub mod source;
pub mod teams;
pub mod template;
pub mod timeline;
pub mod tls;
pub mod validation;
pub mod yaml;
