//! A templated directory (`cwd:`) stays under the literal text written
//! before its first placeholder: `/srv/app/{{ incident.labels.svc }}`
//! can name any directory under `/srv/app`, never `/srv/app/../evil`.
//! The path is resolved lexically and the resolved form is what runs, so
//! the directory checked is the directory used (a symlink inside the
//! prefix can still point elsewhere; that is the host's to control).

use std::path::{Component, Path, PathBuf};

use super::jinja::{self, Segment};

/// The literal text before the first placeholder or tag.
pub fn literal_prefix(source: &str) -> &str {
    match jinja::segments(source).first() {
        Some(Segment::Text(t)) if source.starts_with(t) => t,
        _ => "",
    }
}

/// The directory part of a literal prefix: `/srv/app-` stays under `/srv`.
fn prefix_dir(prefix: &str) -> &Path {
    if prefix.is_empty() || prefix.ends_with('/') {
        Path::new(prefix)
    } else {
        Path::new(prefix).parent().unwrap_or(Path::new(""))
    }
}

/// The rendered directory `rendered` of template `source`, resolved, or why
/// it leaves the template's literal prefix.
pub fn confine(source: &str, rendered: &str) -> Result<String, String> {
    if !super::is_templated(source) {
        return Ok(rendered.to_string());
    }
    let prefix = literal_prefix(source);
    let refuse = || {
        let under = match prefix_dir(prefix).to_str() {
            Some("") | None => "the step's working directory".to_string(),
            Some(dir) => format!("`{dir}`"),
        };
        format!("`cwd` `{rendered}` leaves {under}, where its template starts")
    };
    if !rendered.starts_with(prefix) {
        return Err(refuse());
    }
    let floor = prefix_dir(prefix).components().count();
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in Path::new(rendered).components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if out.len() <= floor || !matches!(out.last(), Some(Component::Normal(_))) {
                    return Err(refuse());
                }
                out.pop();
            }
            other => out.push(other),
        }
    }
    if out.len() < floor {
        return Err(refuse());
    }
    let resolved: PathBuf = out.iter().collect();
    match resolved.to_str() {
        Some("") => Ok(".".into()),
        Some(s) => Ok(s.to_string()),
        None => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_templated_cwd_stays_under_its_prefix() {
        let t = "/srv/app/{{ x }}";
        assert_eq!(confine(t, "/srv/app/api").unwrap(), "/srv/app/api");
        assert_eq!(confine(t, "/srv/app/a/../b/.").unwrap(), "/srv/app/b");
        assert!(confine(t, "/srv/app/../evil").is_err());
        assert!(confine(t, "/srv/app/a/../../evil").is_err());
        assert!(confine(t, "/srv/app/..").is_err());
        assert_eq!(
            confine("/srv/app-{{ x }}", "/srv/app-1").unwrap(),
            "/srv/app-1"
        );
        assert!(confine("/srv/app-{{ x }}", "/srv/app-/../../etc").is_err());
        assert_eq!(confine("{{ x }}", "sub/dir").unwrap(), "sub/dir");
        assert!(confine("{{ x }}", "../evil").is_err());
        assert!(confine("work/{{ x }}", "work/..").is_err());
        assert_eq!(confine("work/{{ x }}", "work/a").unwrap(), "work/a");
        assert_eq!(confine("../plain", "../plain").unwrap(), "../plain");
    }
}
