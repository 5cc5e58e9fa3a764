//! Ids of steps and runs as types of their own, so a step id cannot be
//! passed where a run id (or any other string) is meant. Both serialise as
//! plain strings: every timeline and JSON byte is the same as before.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so `{:width$}` lines ids up in tables as a `String` would.
                f.pad(&self.0)
            }
        }

        // Reading an id as text is always fine; making one from text is
        // the explicit step (`From`).
        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_string())
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}

string_id!(
    /// A step's `id`, unique in its playbook.
    StepId
);

string_id!(
    /// A run's id (`20261201T094220Z-7faf7e`), unique in a state directory.
    RunId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_serialise_as_plain_strings() {
        let step = StepId::from("restart");
        assert_eq!(serde_json::to_string(&step).unwrap(), "\"restart\"");
        let run: RunId = serde_json::from_str("\"20261201T094220Z-7faf7e\"").unwrap();
        assert_eq!(run, "20261201T094220Z-7faf7e");
        assert_eq!(run.to_string(), "20261201T094220Z-7faf7e");
        assert_eq!(format!("[{:5}]", StepId::from("api")), "[api  ]");
    }

    #[test]
    fn maps_keyed_by_id_look_up_by_str() {
        let mut m = std::collections::HashMap::new();
        m.insert(StepId::from("a"), 1);
        assert_eq!(m.get("a"), Some(&1));
    }
}
