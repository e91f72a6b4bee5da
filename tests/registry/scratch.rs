//! Temporary directories that are removed when dropped, also when the test
//! that made them panics.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh, empty directory under the system's temporary directory.
pub struct Scratch {
    path: PathBuf,
}

impl Scratch {
    /// Creates `scopegate-<label>-<pid>-<n>`, unique within and across
    /// test processes running at the same time.
    pub fn new(label: &str) -> Scratch {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "scopegate-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover from a killed run with a recycled pid is stale.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", path.display()));
        Scratch { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `self/relative`, created as a directory.
    pub fn dir(&self, relative: &str) -> PathBuf {
        let dir = self.path.join(relative);
        fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("cannot create {}: {error}", dir.display()));
        dir
    }

    /// `self/relative`, written with `content`.
    pub fn file(&self, relative: &str, content: &[u8]) -> PathBuf {
        let file = self.path.join(relative);
        fs::write(&file, content)
            .unwrap_or_else(|error| panic!("cannot write {}: {error}", file.display()));
        file
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
