//! irctl: playbook-as-code incident response.
//!
//! The stages, in the order data flows through them:
//!
//! - [`source`]: where playbooks come from: a directory or a cached Git
//!   repository at a ref, with provenance and history;
//! - [`playbook`]: read playbook files ([`playbook::load`]) and check them
//!   into runnable playbooks ([`playbook::validate`]), reporting
//!   [`diagnostic::Diagnostic`]s with file, line and column;
//! - [`incident`]: turn an alert payload into one [`incident::Incident`];
//! - [`matching`]: choose the playbook for an incident, and explain why;
//! - [`template`]: render step fields with context-aware escaping;
//! - [`engine`]: run a playbook's steps as a DAG, writing the [`timeline`];
//! - [`playtest`]: playbook tests, run through the engine with canned results;
//! - [`drill`]: run a playbook's drill through the engine, decide which
//!   drills are due, and report them (JUnit XML, JSON).
//!
//! After the fire, [`record`] reads runs and incident logs back from the
//! state directory, verifies their hash chains, and builds postmortems and stats.
//!
//! The binary (`src/main.rs`, `src/cli.rs`, `src/cmd/`) only parses
//! arguments, calls these stages and prints through `src/ui.rs`.

pub mod capped;
pub mod diagnostic;
pub mod drill;
pub mod duration;
pub mod engine;
pub mod incident;
pub mod matching;
pub mod memo;
pub mod playbook;
pub mod playtest;
pub mod record;
pub mod schedule;
pub mod secret;
pub mod source;
pub mod template;
pub mod timeline;
pub mod tls;
pub mod yaml;
