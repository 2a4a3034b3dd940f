//! Owner-only files: the state directory holds personal data (events' bodies, HTTP exchanges)
//! and credentials (the OAuth refresh token), so it is created `0700` and its files `0600`, and
//! an existing one is tightened when it is opened. Unix only; elsewhere these do nothing.

use anyhow::Context as _;
use std::path::Path;

/// Creates `dir` (and its missing parents) owner-only, or tightens an existing one to `0700`.
pub fn private_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
        std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mode = std::fs::metadata(dir).with_context(|| format!("reading {}", dir.display()))?.permissions().mode();
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} owner-only (chmod 700)", dir.display()))?;
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(())
}

/// Tightens `file` to `0600` if it exists and others may read it.
pub fn private_file(file: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        match std::fs::metadata(file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} owner-only (chmod 600)", file.display()))?,
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Creates `file` empty and owner-only if it is missing, else tightens it: before SQLite opens
/// a database, so that SQLite, which gives its `-wal` and `-shm` files the database's mode,
/// makes them owner-only too.
pub fn private_new_file(file: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(file) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => private_file(file)?,
            Err(e) => return Err(e).with_context(|| format!("creating {}", file.display())),
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn existing_files_and_folders_are_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("a/state");
        private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        private_dir(&state).unwrap();
        assert_eq!(mode(&state), 0o700);
        let file = state.join("f");
        private_new_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        private_new_file(&file).unwrap();
        assert_eq!(mode(&file), 0o600);
    }
}

/// Gives the write-ahead log of a SQLite file the file's owner-only mode.
pub fn private_wal(path: &Path) -> anyhow::Result<()> {
    if path.as_os_str().is_empty() || path == Path::new(":memory:") {
        return Ok(());
    }
    for suffix in ["-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        private_file(Path::new(&name))?;
    }
    Ok(())
}
