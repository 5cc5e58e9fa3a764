//! The picture of a playbook's DAG, independent of any output format: its
//! steps as nodes (generated ids, the step id and kind as text, `confirm`
//! and `simulate_in_drill` marked), `needs` as edges styled by the needing
//! step's `trigger` and labelled with its `when`, `on_resolved` steps as
//! their own group, and optionally what a run did to each step.

use crate::playbook::model::Trigger;
use crate::playbook::{Playbook, Program, Step, StepAction};

/// A DAG to draw.
#[derive(Clone, Debug, Default)]
pub struct Graph {
    /// What it shows (the playbook's name, or `name run RUN_ID`).
    pub title: String,
    /// Every step, in playbook order (`steps`, then `on_resolved`).
    pub nodes: Vec<Node>,
    /// `needs` edges, from the needed step to the needing one.
    pub edges: Vec<Edge>,
    /// Named groups of nodes (`on_resolved`); a node in none is top-level.
    pub groups: Vec<Group>,
    /// Something the reader must know (the playbook changed since the run).
    pub note: Option<String>,
}

/// A named group of nodes, drawn as a box around them.
#[derive(Clone, Debug)]
pub struct Group {
    /// Its title.
    pub title: String,
    /// Indexes into [`Graph::nodes`].
    pub nodes: Vec<usize>,
}

/// One step.
#[derive(Clone, Debug)]
pub struct Node {
    /// The generated id every format uses (`n0`, `n1`, …).
    pub key: String,
    /// The step id as written (untrusted text).
    pub id: String,
    /// `shell`, `command`, `http`, `notify` (`notify slack`, …); empty when unknown.
    pub kind: String,
    /// The step asks before it runs.
    pub confirm: bool,
    /// A drill records the step instead of running it.
    pub simulate_in_drill: bool,
    /// The `when` of a step that needs nothing (others show it on their edges).
    pub when: Option<String>,
    /// What a run did to it, when the graph shows a run.
    pub outcome: Option<Outcome>,
}

/// How an edge is drawn: after the needing step's `trigger`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EdgeKind {
    /// `on_success`: a plain arrow.
    Needs,
    /// `on_failure`: dashed.
    OnFailure,
    /// `always`: thick.
    Always,
}

/// A `needs` edge.
#[derive(Clone, Debug)]
pub struct Edge {
    /// The needed step (index into [`Graph::nodes`]).
    pub from: usize,
    /// The needing step.
    pub to: usize,
    /// How the needing step is triggered.
    pub kind: EdgeKind,
    /// The needing step's `when`.
    pub when: Option<String>,
}

impl Edge {
    /// The edge's label: the trigger (when not the default) and the `when`.
    pub fn label(&self) -> Option<String> {
        let trigger = match self.kind {
            EdgeKind::Needs => None,
            EdgeKind::OnFailure => Some("on_failure".to_string()),
            EdgeKind::Always => Some("always".to_string()),
        };
        let when = self.when.as_ref().map(|w| format!("when {w}"));
        match (trigger, when) {
            (Some(t), Some(w)) => Some(format!("{t}, {w}")),
            (t, w) => t.or(w),
        }
    }
}

/// What happened to a step in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// It succeeded.
    Succeeded,
    /// It failed (or timed out).
    Failed,
    /// It did not run (trigger or `when`).
    Skipped,
    /// The run was interrupted while it ran or before it started.
    Cancelled,
    /// A drill recorded it instead of running it.
    Simulated,
    /// It started and never finished (irctl was killed).
    Unfinished,
    /// The run never got to it.
    NotReached,
}

impl State {
    /// The name used as a CSS/Mermaid class and in labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Succeeded => "succeeded",
            State::Failed => "failed",
            State::Skipped => "skipped",
            State::Cancelled => "cancelled",
            State::Simulated => "simulated",
            State::Unfinished => "unfinished",
            State::NotReached => "not_reached",
        }
    }

    /// The state a recorded step status (`succeeded`, `timed_out`, `not_started`, …) means.
    pub fn of_status(status: &str) -> State {
        match status {
            "succeeded" => State::Succeeded,
            "failed" | "timed_out" => State::Failed,
            "skipped" => State::Skipped,
            "cancelled" => State::Cancelled,
            "simulated" => State::Simulated,
            "started" => State::Unfinished,
            _ => State::NotReached,
        }
    }

    /// Every state, in legend order.
    pub const ALL: [State; 7] = [
        State::Succeeded,
        State::Failed,
        State::Skipped,
        State::Cancelled,
        State::Simulated,
        State::Unfinished,
        State::NotReached,
    ];

    /// Fill and stroke colours, shared by every format so a legend reads the same.
    pub fn colours(self) -> (&'static str, &'static str) {
        match self {
            State::Succeeded => ("#c8e6c9", "#2e7d32"),
            State::Failed => ("#ffcdd2", "#c62828"),
            State::Skipped => ("#eeeeee", "#757575"),
            State::Cancelled => ("#ffe0b2", "#e65100"),
            State::Simulated => ("#bbdefb", "#1565c0"),
            State::Unfinished => ("#fff9c4", "#f9a825"),
            State::NotReached => ("#ffffff", "#bdbdbd"),
        }
    }
}

/// A step's outcome in a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// What happened.
    pub state: State,
    /// The recorded status (`timed_out` says more than `failed`).
    pub status: String,
    /// Attempts made.
    pub attempts: u64,
    /// Why it was skipped or cancelled.
    pub reason: Option<String>,
}

impl Outcome {
    /// One line for a label: `failed after 3 attempts`, `skipped: need x failed`.
    pub fn text(&self) -> String {
        let mut t = self.status.replace('_', " ");
        if self.attempts > 1 {
            t.push_str(&format!(" after {} attempts", self.attempts));
        }
        if matches!(self.state, State::Skipped | State::Cancelled)
            && let Some(r) = &self.reason
        {
            t.push_str(": ");
            t.push_str(r);
        }
        t
    }
}

/// The kind of a step as people name it.
pub fn step_kind(step: &Step) -> String {
    match &step.action {
        StepAction::Process(p) => match p.program {
            Program::Shell(_) => "shell".into(),
            Program::Command(_) => "command".into(),
        },
        StepAction::Http(_) => "http".into(),
        StepAction::Notify(n) => {
            let target = [
                (n.slack.is_some(), "slack"),
                (n.teams.is_some(), "teams"),
                (n.pagerduty.is_some(), "pagerduty"),
                (n.webhook.is_some(), "webhook"),
                (n.console.is_some(), "console"),
            ]
            .into_iter()
            .find(|(set, _)| *set)
            .map(|(_, name)| name);
            match target {
                Some(t) => format!("notify {t}"),
                None => "notify".into(),
            }
        }
    }
}

impl Graph {
    /// The DAG of `playbook`: its `steps`, and its `on_resolved` steps as a group.
    pub fn of_playbook(playbook: &Playbook) -> Graph {
        let mut g = Graph {
            title: playbook.name.clone(),
            ..Graph::default()
        };
        g.add_steps(&playbook.steps);
        if !playbook.on_resolved.is_empty() {
            let first = g.nodes.len();
            g.add_steps(&playbook.on_resolved);
            g.groups.push(Group {
                title: "on_resolved".into(),
                nodes: (first..g.nodes.len()).collect(),
            });
        }
        g
    }

    /// The DAG of one run: the steps it recorded (`recorded`, in order), drawn
    /// with the edges of `steps` (the playbook's `steps` or `on_resolved`
    /// that ran, when known), each with its outcome. A recorded step the
    /// playbook lacks is drawn without edges, and one the record never
    /// mentions is not reached.
    pub fn of_run(title: String, steps: Option<&[Step]>, recorded: &[RecordedStep]) -> Graph {
        let mut g = Graph {
            title,
            ..Graph::default()
        };
        if let Some(steps) = steps {
            g.add_steps(steps);
        }
        for r in recorded {
            let at = match g.nodes.iter().position(|n| n.id == r.id) {
                Some(i) => i,
                None => {
                    g.push_node(r.id.clone(), String::new(), false, false, None);
                    g.nodes.len() - 1
                }
            };
            g.nodes[at].outcome = Some(r.outcome.clone());
        }
        for n in &mut g.nodes {
            n.outcome.get_or_insert(Outcome {
                state: State::NotReached,
                status: "not_reached".into(),
                attempts: 0,
                reason: None,
            });
        }
        g
    }

    fn push_node(
        &mut self,
        id: String,
        kind: String,
        confirm: bool,
        simulate: bool,
        when: Option<String>,
    ) {
        let key = format!("n{}", self.nodes.len());
        self.nodes.push(Node {
            key,
            id,
            kind,
            confirm,
            simulate_in_drill: simulate,
            when,
            outcome: None,
        });
    }

    fn add_steps(&mut self, steps: &[Step]) {
        let base = self.nodes.len();
        for s in steps {
            let when = if s.needs.is_empty() {
                s.when.clone()
            } else {
                None
            };
            self.push_node(
                s.id.to_string(),
                step_kind(s),
                s.confirm.is_some(),
                s.simulate_in_drill,
                when,
            );
        }
        for (i, s) in steps.iter().enumerate() {
            let kind = match s.trigger {
                Trigger::OnSuccess => EdgeKind::Needs,
                Trigger::OnFailure => EdgeKind::OnFailure,
                Trigger::Always => EdgeKind::Always,
            };
            for &need in &s.needs {
                self.edges.push(Edge {
                    from: base + need,
                    to: base + i,
                    kind,
                    when: s.when.clone(),
                });
            }
        }
    }

    /// The nodes in no group.
    pub fn top_level(&self) -> impl Iterator<Item = &Node> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.groups.iter().any(|g| g.nodes.contains(i)))
            .map(|(_, n)| n)
    }

    /// The lines of a node's label: id, kind and marks, outcome.
    pub fn node_lines(node: &Node) -> Vec<String> {
        let mut kind = node.kind.clone();
        if node.confirm {
            kind.push_str(", confirm");
        }
        if node.simulate_in_drill {
            kind.push_str(", simulated in drill");
        }
        let mut lines = vec![node.id.clone()];
        if !kind.is_empty() {
            lines.push(kind);
        }
        if let Some(w) = &node.when {
            lines.push(format!("when {w}"));
        }
        if let Some(o) = &node.outcome {
            lines.push(o.text());
        }
        lines
    }
}

/// One recorded step of a run: its id and outcome.
#[derive(Clone, Debug)]
pub struct RecordedStep {
    /// The step id.
    pub id: String,
    /// What happened.
    pub outcome: Outcome,
}
