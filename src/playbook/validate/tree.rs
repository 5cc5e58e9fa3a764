//! A YAML document as a tree of positioned nodes: what the schema walk
//! ([`super::schema`]) reads when a file does not fit the model, so it can
//! see the whole file rather than stop where serde stopped. Parsed through
//! [`crate::yaml::from_str`], with its budgets and duplicate-key rule.

use std::fmt;

use serde::{Deserialize, Deserializer};

use crate::yaml::{Spanned, YamlError, from_str};

/// A YAML document as a tree of positioned nodes, for checks that must see
/// the whole file even where it does not fit the model (collecting every
/// schema error in one pass instead of serde's first).
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// `~`, `null` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A whole number.
    Int(i128),
    /// Any other number.
    Float(f64),
    /// Text.
    Str(String),
    /// A list.
    Seq(Vec<Spanned<Node>>),
    /// A mapping, in written order; keys as text with their positions.
    Map(Vec<(Spanned<String>, Spanned<Node>)>),
}

impl Node {
    /// What the node is, as diagnostics say it: `a list`, `a mapping`,
    /// `nothing (null)`, or the scalar in backticks.
    pub fn describe(&self) -> String {
        let scalar = |s: String| {
            let short: String = s.chars().take(40).collect();
            let ellipsis = if short.len() < s.len() { "…" } else { "" };
            format!("`{short}{ellipsis}`")
        };
        match self {
            Node::Null => "nothing (null)".to_string(),
            Node::Bool(b) => scalar(b.to_string()),
            Node::Int(i) => scalar(i.to_string()),
            Node::Float(f) => scalar(f.to_string()),
            Node::Str(s) => scalar(s.clone()),
            Node::Seq(_) => "a list".to_string(),
            Node::Map(_) => "a mapping".to_string(),
        }
    }
}

/// A mapping key of any scalar type, as text.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Key(match Node::deserialize(deserializer)? {
            Node::Null => "null".to_string(),
            Node::Bool(b) => b.to_string(),
            Node::Int(i) => i.to_string(),
            Node::Float(f) => f.to_string(),
            Node::Str(s) => s,
            other => other.describe(),
        }))
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(i128::from(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(i128::from(v)))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(i128::try_from(v).map_or(Node::Float(v as f64), Node::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let key = Spanned {
                value: key.value.0,
                pos: key.pos,
            };
            entries.push((key, value));
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Parses one YAML document into a [`Node`] tree.
pub fn tree(text: &str) -> Result<Spanned<Node>, YamlError> {
    from_str::<Spanned<Node>>(text)
}
