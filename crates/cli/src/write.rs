//! The one way a command writes a file (`-o FILE`): whole, or not at all. A regular file is
//! written to a temporary file beside it and renamed over it, so a reader never sees half a
//! ruleset or half a profile. A path that exists and is not a regular file (`/dev/null`, a
//! FIFO, a terminal) is written to as it is: a rename would replace the device node itself. A
//! symbolic link stays a link: the file it names is replaced.

use std::io::Write as _;
use std::path::Path;

use anyhow::Context;

/// Writes `bytes` to standard output, or to `path` as [`atomically`] does.
pub fn to_output(path: Option<&Path>, bytes: &[u8]) -> anyhow::Result<()> {
    match path {
        Some(p) => atomically(p, bytes),
        None => {
            std::io::stdout().write_all(bytes)?;
            Ok(())
        }
    }
}

/// Writes `bytes` to `path`, whole or not at all (see the module documentation).
pub fn atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let cannot = || format!("cannot write {}", path.display());
    let target = match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .with_context(cannot)?;
            f.write_all(bytes).with_context(cannot)?;
            return Ok(());
        }
        // Through a link to the file it names, so the link is kept.
        Ok(_) => std::fs::canonicalize(path).with_context(cannot)?,
        Err(_) => path.to_path_buf(),
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}.portolan-tmp",
        target.file_name().and_then(|n| n.to_str()).unwrap_or("out"),
        std::process::id()
    ));
    let written = std::fs::write(&tmp, bytes)
        .with_context(|| format!("cannot write {}", tmp.display()))
        .and_then(|()| std::fs::rename(&tmp, &target).with_context(cannot));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_file_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("out.nft");
        std::fs::write(&file, "old contents, longer than the new").expect("write");
        atomically(&file, b"new").expect("written");
        assert_eq!(std::fs::read_to_string(&file).expect("read"), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("out.nft")]);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("no-such-folder/out.nft");
        let e = atomically(&file, b"x").expect_err("no folder");
        assert!(format!("{e:#}").contains("no-such-folder"), "{e:#}");
    }
}
