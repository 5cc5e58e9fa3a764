//! Pictures people already know how to read: a playbook's DAG as Mermaid or
//! Graphviz DOT ([`model`] → [`mermaid`], [`dot`]), coloured by what a run
//! did; an incident's Gantt chart ([`gantt`]) as a Mermaid `gantt` block or
//! inline SVG ([`svg`]); and a self-contained HTML page ([`html`]) that
//! carries the SVG with the events below it.
//!
//! Every label is untrusted text (step ids, `when` expressions, notes and
//! skip reasons come from other teams' playbooks and from the record), so
//! each output format escapes it its own way ([`text`] cleans it first);
//! node ids are generated (`n0`, `n1`, …), never taken from a step id.
//! Nothing here reads files or prints: [`crate::record::diagram`] builds the
//! pictures from a record, `irctl graph` from a playbook.

pub mod dot;
pub mod gantt;
pub mod html;
pub mod mermaid;
pub mod model;
pub mod svg;
pub mod text;

pub use model::{EdgeKind, Graph, Outcome, RecordedStep, State};
