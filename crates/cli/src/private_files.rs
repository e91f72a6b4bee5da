//! Files only their owner may read: the cached tokens and docker config that
//! `scopegate auth` writes, the single sign-on logins (`src/sso/store.rs`), and the key
//! folder `scopegate keygen` creates; and the checks
//! that a directory found already there is private before secrets are read from it.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// `$VAR/scopegate/LEAF` (an XDG base directory, such as `XDG_CONFIG_HOME`), else
/// `$HOME/FALLBACK/scopegate/LEAF`; `None` when neither variable is set (or both are empty).
pub fn scopegate_directory(var: &str, fallback: &str, leaf: &str) -> Option<PathBuf> {
    let base = std::env::var_os(var)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|home| PathBuf::from(home).join(fallback))
        })?;
    Some(base.join("scopegate").join(leaf))
}

/// Creates `dir` and any missing parents; the ones created are readable by
/// their owner only.
pub fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))
}

/// Replaces `file` with `content` atomically (a sibling temporary file renamed over it),
/// the new file readable and writable by its owner only.
pub fn write_private(file: &Path, content: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let mut name = file.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{nanos}.tmp", std::process::id()));
    let temporary = file.with_file_name(name);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let result = options
        .open(&temporary)
        .and_then(|mut out| {
            out.write_all(content)?;
            out.sync_all()
        })
        .and_then(|()| std::fs::rename(&temporary, file));
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result.with_context(|| format!("writing {}", file.display()))
}

/// Whether `dir` may hold secrets: it is a real directory (not a symlink), owned by the
/// current user, and neither its group nor others have any permission on it. `Ok` when
/// it does not exist yet (it will be created private). The error says why not; the
/// directory is never changed (it may be someone else's).
///
/// Security-sensitive: a directory another local user can write lets them plant a cached
/// token or a symlink that the CLI would then print or follow.
pub fn check_private_dir(dir: &Path) -> Result<()> {
    let metadata = match std::fs::symlink_metadata(dir) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(anyhow::Error::new(error).context(format!("inspecting {}", dir.display())))
        }
    };
    if !metadata.is_dir() {
        anyhow::bail!("{} is not a directory (a symlink?)", dir.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        check_owner_and_mode(
            metadata.uid(),
            metadata.mode(),
            rustix::process::geteuid().as_raw(),
        )
        .map_err(|reason| anyhow::anyhow!("{} {reason}", dir.display()))?;
    }
    Ok(())
}

/// The decision of [`check_private_dir`] on a directory's owner and mode.
#[cfg(unix)]
fn check_owner_and_mode(owner: u32, mode: u32, user: u32) -> Result<(), String> {
    if owner != user {
        return Err(format!("is owned by uid {owner}, not by you (uid {user})"));
    }
    if mode & 0o077 != 0 {
        return Err(format!(
            "has mode {:o}: group or others have access (it must be 0700)",
            mode & 0o7777
        ));
    }
    Ok(())
}

/// The content of `file`, opened without following a symlink (a symlink is an error), so
/// a planted link cannot make the CLI read another file as if it were its own.
pub fn read_no_follow(file: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(O_NOFOLLOW);
    }
    let mut opened = options.open(file)?;
    if !opened.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut content = Vec::new();
    opened.read_to_end(&mut content)?;
    Ok(content)
}

/// `O_NOFOLLOW` as `OpenOptionsExt::custom_flags` takes it.
#[cfg(unix)]
#[allow(
    clippy::cast_possible_wrap,
    reason = "open(2) flags are small positive bits; the cast is exact"
)]
const O_NOFOLLOW: i32 = rustix::fs::OFlags::NOFOLLOW.bits() as i32;

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is how a test fails"
    )]

    use super::*;

    #[cfg(unix)]
    #[test]
    fn only_a_directory_of_ours_without_group_or_other_access_is_private() {
        // (owner, mode, current user, private)
        let cases = [
            (1000, 0o40700, 1000, true),
            (1000, 0o40500, 1000, true),
            (1000, 0o40710, 1000, false),
            (1000, 0o40701, 1000, false),
            (1000, 0o40777, 1000, false),
            (1000, 0o41777, 1000, false),
            (0, 0o40700, 1000, false),
            (1001, 0o40700, 1000, false),
        ];
        for (owner, mode, user, is_private) in cases {
            assert_eq!(
                check_owner_and_mode(owner, mode, user).is_ok(),
                is_private,
                "{owner} {mode:o} {user}"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn shared_directories_and_symlinks_are_not_private() {
        use std::os::unix::fs::PermissionsExt as _;
        let root = tempfile::tempdir().unwrap();
        let private = root.path().join("private");
        create_private_dir(&private).unwrap();
        assert!(check_private_dir(&private).is_ok());
        assert!(check_private_dir(&root.path().join("missing")).is_ok());
        let shared = root.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = check_private_dir(&shared).unwrap_err().to_string();
        assert!(error.contains("has mode 777"), "{error}");
        assert_eq!(
            std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777,
            0o777,
            "left as it was"
        );
        let link = root.path().join("link");
        std::os::unix::fs::symlink(&private, &link).unwrap();
        let error = check_private_dir(&link).unwrap_err().to_string();
        assert!(error.contains("not a directory"), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn reading_does_not_follow_symlinks() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("target.json");
        std::fs::write(&target, "secret").unwrap();
        assert_eq!(read_no_follow(&target).unwrap(), b"secret");
        let link = root.path().join("link.json");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(read_no_follow(&link).is_err());
        assert!(read_no_follow(root.path()).is_err(), "a directory");
    }
}
