//! Reading the small files a user names (a secrets file, a postmortem
//! template, a test file) with a size cap. The size on disk cannot be
//! trusted for this: `/dev/zero`, `/dev/stdin` or a FIFO report 0 bytes and
//! never end, and reading one whole would exhaust memory instead of failing.

use std::io::Read as _;
use std::path::Path;

/// The text of `path`, or an error of kind `InvalidData` once it passes
/// `max` bytes; callers add the file's name and role as context.
pub fn read_to_string(path: &Path, max: u64) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(max + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than the {max}-byte limit"),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_endless_file_is_an_error_not_a_hang() {
        let err = super::read_to_string(std::path::Path::new("/dev/zero"), 1024).unwrap_err();
        assert_eq!(err.to_string(), "larger than the 1024-byte limit");
    }
}
