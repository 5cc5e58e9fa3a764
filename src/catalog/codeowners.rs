//! CODEOWNERS, the fallback owner: when an alert names no catalog entity,
//! the team owning the playbook file that answers it owns the incident.
//!
//! GitHub's rules: the first of `.github/CODEOWNERS`, `CODEOWNERS` and
//! `docs/CODEOWNERS` at the repository root is used; patterns are
//! gitignore-style (a leading `/` or an inner `/` anchors at the root, a
//! bare name matches at any depth, a trailing `/` matches only what is
//! under a directory, `*`, `?` and `**` as in gitignore); the last matching
//! line wins. The owner is that line's first, mapped as Backstage's
//! CODEOWNERS processor maps it: `@org/team` is the Group `team`, `@user`
//! the User `user`, an e-mail address its local part (a Group).

use regex::Regex;

use super::refs::{DEFAULT_NAMESPACE, EntityRef};
use crate::yaml::Pos;

/// Where CODEOWNERS may be, in GitHub's order of precedence.
pub const LOCATIONS: &[&str] = &[".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

/// Lines read at most; GitHub's own limit is a 3 MB file.
const MAX_RULES: usize = 10_000;

/// One line: a pattern and its owners.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The pattern as written.
    pub pattern: String,
    /// The owners as written (`@org/team`, `@user`, `a@b.c`).
    pub owners: Vec<String>,
    /// Where the line is.
    pub pos: Pos,
    regex: Regex,
}

/// A parsed CODEOWNERS file.
#[derive(Clone, Debug)]
pub struct CodeOwners {
    /// The file, as shown to users.
    pub file: String,
    /// Its rules, in file order.
    pub rules: Vec<Rule>,
    /// Lines that could not be used: where, and why.
    pub problems: Vec<(Pos, String)>,
}

/// What CODEOWNERS says about one path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The owner as a canonical reference.
    pub owner: EntityRef,
    /// The owner as written.
    pub written: String,
    /// The pattern of the deciding line.
    pub pattern: String,
    /// That line's number.
    pub line: u32,
}

impl CodeOwners {
    /// Parses `text` (the file `file`).
    pub fn parse(file: &str, text: &str) -> CodeOwners {
        let mut rules = Vec::new();
        let mut problems = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let pos = Pos::new(u32::try_from(i + 1).unwrap_or(u32::MAX), 1);
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if rules.len() >= MAX_RULES {
                problems.push((
                    pos,
                    format!("more than {MAX_RULES} rules; the rest are ignored"),
                ));
                break;
            }
            // A `#` after whitespace starts a comment.
            let line = line.split(" #").next().unwrap_or(line);
            let mut words = line.split_whitespace();
            let Some(pattern) = words.next() else {
                continue;
            };
            let owners: Vec<String> = words.map(str::to_string).collect();
            match compile(pattern) {
                Ok(regex) => rules.push(Rule {
                    pattern: pattern.to_string(),
                    owners,
                    pos,
                    regex,
                }),
                Err(why) => problems.push((pos, why)),
            }
        }
        CodeOwners {
            file: file.to_string(),
            rules,
            problems,
        }
    }

    /// The owner of `path` (repository-relative, `/`-separated): the first
    /// owner of the last matching line; `None` when no line matches or the
    /// last match lists no owner (GitHub's way to unassign).
    pub fn owner_of(&self, path: &str) -> Option<Decision> {
        let path = path.trim_start_matches('/');
        let rule = self.rules.iter().rev().find(|r| r.regex.is_match(path))?;
        let written = rule.owners.first()?;
        Some(Decision {
            owner: owner_ref(written)?,
            written: written.clone(),
            pattern: rule.pattern.clone(),
            line: rule.pos.line,
        })
    }
}

/// Backstage's mapping of a CODEOWNERS owner to an entity reference.
pub fn owner_ref(owner: &str) -> Option<EntityRef> {
    let text = if let Some(rest) = owner.strip_prefix('@') {
        match rest.split_once('/') {
            Some((_, team)) => team.to_string(),
            None => format!("user:{rest}"),
        }
    } else if let Some((local, domain)) = owner.split_once('@')
        && domain.contains('.')
    {
        local.to_string()
    } else {
        owner.to_string()
    };
    EntityRef::parse(&text, Some("group"), DEFAULT_NAMESPACE).ok()
}

/// A gitignore-style pattern as an anchored regex over a whole path.
fn compile(pattern: &str) -> Result<Regex, String> {
    if pattern.starts_with('!') {
        return Err(format!(
            "`{pattern}`: negated patterns are not supported in CODEOWNERS"
        ));
    }
    if pattern.contains('[') {
        return Err(format!(
            "`{pattern}`: character ranges are not supported in CODEOWNERS"
        ));
    }
    let dir_only = pattern.len() > 1 && pattern.ends_with('/');
    let body = pattern.trim_end_matches('/');
    let anchored = body.contains('/');
    let body = body.trim_start_matches('/');
    let mut re = String::from("^");
    if !anchored && !body.starts_with("**") {
        re.push_str("(?:.*/)?");
    }
    re.push_str(&glob_body(body));
    re.push_str(if dir_only { "/.*$" } else { "(?:/.*)?$" });
    Regex::new(&re).map_err(|e| format!("`{pattern}`: {e}"))
}

/// The regex for the glob `body`: `**` crosses directories, `*` and `?` do not.
pub(crate) fn glob_body(body: &str) -> String {
    let mut re = String::new();
    let chars: Vec<char> = body.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                if chars.get(i + 2) == Some(&'/') {
                    re.push_str("(?:.*/)?");
                    i += 3;
                } else {
                    re.push_str(".*");
                    i += 2;
                }
                continue;
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
        i += 1;
    }
    re
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(text: &str, path: &str) -> Option<String> {
        CodeOwners::parse("CODEOWNERS", text)
            .owner_of(path)
            .map(|d| d.owner.to_string())
    }

    #[test]
    fn last_matching_line_wins() {
        let text =
            "* @acme/everyone\n/playbooks/ @acme/sre\nplaybooks/db-*.yaml @acme/dba @acme/sre\n";
        assert_eq!(owner(text, "README.md").unwrap(), "group:default/everyone");
        assert_eq!(
            owner(text, "playbooks/disk.yaml").unwrap(),
            "group:default/sre"
        );
        assert_eq!(
            owner(text, "playbooks/db-pool.yaml").unwrap(),
            "group:default/dba"
        );
        assert_eq!(
            owner(text, "playbooks/sub/db-pool.yaml").unwrap(),
            "group:default/sre"
        );
    }

    #[test]
    fn gitignore_style_patterns() {
        // A bare name matches at any depth; an inner `/` anchors.
        assert!(owner("*.yaml @a/x", "deep/down/p.yaml").is_some());
        assert!(owner("disk.yaml @a/x", "playbooks/disk.yaml").is_some());
        assert!(owner("ops/disk.yaml @a/x", "playbooks/ops/disk.yaml").is_none());
        assert!(owner("**/ops/*.yaml @a/x", "playbooks/ops/disk.yaml").is_some());
        assert!(owner("/playbooks/** @a/x", "playbooks/a/b.yaml").is_some());
        // A trailing `/` matches what is under a directory, not a file of that name.
        assert!(owner("docs/ @a/x", "docs").is_none());
        assert!(owner("docs/ @a/x", "src/docs/a.md").is_some());
        assert!(owner("p?.yaml @a/x", "p1.yaml").is_some());
        assert!(owner("p?.yaml @a/x", "p12.yaml").is_none());
    }

    #[test]
    fn an_empty_owner_list_unassigns() {
        assert_eq!(owner("* @a/x\n/generated/\n", "generated/p.yaml"), None);
    }

    #[test]
    fn owners_map_as_backstage_maps_them() {
        assert_eq!(
            owner_ref("@acme/platform").unwrap().to_string(),
            "group:default/platform"
        );
        assert_eq!(owner_ref("@jane").unwrap().to_string(), "user:default/jane");
        assert_eq!(
            owner_ref("sre@example.com").unwrap().to_string(),
            "group:default/sre"
        );
    }

    #[test]
    fn comments_and_unsupported_lines() {
        let c = CodeOwners::parse(
            "CODEOWNERS",
            "# top\n*.yaml @a/x # trailing\n!x @a/y\n[ab].md @a/z\n",
        );
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.rules[0].owners, vec!["@a/x".to_string()]);
        assert_eq!(c.problems.len(), 2);
        assert_eq!(c.problems[0].0.line, 3);
    }
}
