//! Writing files so that a full disk costs nothing already written, and
//! telling a write that found no room from other failures.
//!
//! `std::fs::write` over an existing file truncates it first: when the disk
//! fills halfway, the old postmortem is gone and a torn new one is left in its
//! place. [`write_replacing`] writes beside the file and renames over it, so
//! the path holds either the old bytes or all of the new ones. A write that
//! fails for lack of room (`ENOSPC`, a quota, a file-size limit) is its own
//! exit code: it is not the input's fault, and goes away once space is freed.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The exit code of a command that could not write a file for lack of room,
/// or could not write its record (a timeline).
pub const EXIT_CODE: u8 = 74;

/// Whether `err` says a write found no room: the disk or the quota is full
/// (`ENOSPC`, `EDQUOT`, SQLite's `SQLITE_FULL`) or the file may not grow
/// (`EFBIG`, a file-size limit).
pub fn out_of_room(err: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(e) = err.downcast_ref::<std::io::Error>() {
        return e.raw_os_error().is_some_and(no_room_errno);
    }
    if let Some(e) = err.downcast_ref::<crate::timeline::Unwritable>() {
        return e.errno.is_some_and(no_room_errno);
    }
    if let Some(rusqlite::Error::SqliteFailure(e, _)) = err.downcast_ref::<rusqlite::Error>() {
        return e.code == rusqlite::ErrorCode::DiskFull;
    }
    false
}

fn no_room_errno(errno: i32) -> bool {
    use nix::libc::{EDQUOT, EFBIG, ENOSPC};
    matches!(errno, ENOSPC | EDQUOT | EFBIG)
}

/// Replaces the file at `path` with `bytes` whole or not at all: they are
/// written and synced to a new file beside it, which is then renamed over
/// it. On failure the temporary file is removed and `path` is untouched.
/// A path that is not a regular file (`/dev/stdout`, a FIFO) or is a
/// symbolic link is written in place, as `std::fs::write` would: renaming
/// over it would replace the device or the link itself.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let old = match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_file() => {
            return std::fs::write(path, bytes)
                .with_context(|| format!("cannot write `{}`", path.display()));
        }
        Ok(meta) => Some(meta.permissions()),
        Err(_) => None,
    };
    let staged = staging_path(path);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&staged)
        .and_then(|mut f| {
            if let Some(mode) = old {
                f.set_permissions(mode)?;
            }
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&staged, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staged);
        return Err(e).with_context(|| format!("cannot write `{}`", path.display()));
    }
    Ok(())
}

/// A name beside `path` that no other writer picks: hidden, with this
/// process's id and a counter.
fn staging_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_replaced_file_holds_the_new_bytes_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("postmortem.md");
        std::fs::write(&path, "old").unwrap();
        super::write_replacing(&path, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_replacement_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails after the write.
        let path = dir.path().join("out");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("kept"), "old").unwrap();
        let err = super::write_replacing(&path, b"new").unwrap_err();
        assert!(format!("{err:#}").contains("cannot write"), "{err:#}");
        assert_eq!(std::fs::read_to_string(path.join("kept")).unwrap(), "old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_device_or_a_link_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "old").unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        super::write_replacing(&link, b"new").unwrap();
        assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "new");
        super::write_replacing(std::path::Path::new("/dev/null"), b"x").unwrap();
    }

    #[test]
    fn no_room_is_told_apart() {
        let full = std::io::Error::from_raw_os_error(nix::libc::ENOSPC);
        let big = std::io::Error::from_raw_os_error(nix::libc::EFBIG);
        let denied = std::io::Error::from_raw_os_error(nix::libc::EACCES);
        assert!(super::out_of_room(&full));
        assert!(super::out_of_room(&big));
        assert!(!super::out_of_room(&denied));
    }
}
