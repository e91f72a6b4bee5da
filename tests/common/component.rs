//! The component built with a policy folder of a test's own (build.rs reads
//! `SCOPEGATE_POLICY_DIR`), into a target directory of its own, and a copy of
//! the repository's manifest that runs it. The first build of a target
//! directory compiles the dependencies; later ones recompile scopegate alone.

use std::path::{Path, PathBuf};
use std::process::Command;

use scopegate_harness::repository_root;

/// How the component is built: as `spin.toml` ships it (wasm32-wasip1 with
/// the feature `snapshot`, then the Wizer snapshot), or as `spin-p3.toml`.
#[derive(Clone, Copy, PartialEq)]
pub enum Build {
    Shipped,
    P3,
}

impl Build {
    /// The manifest, and the `source` it names for the shipped build.
    fn manifest(self) -> (&'static str, &'static str) {
        match self {
            Build::Shipped => (
                "spin.toml",
                "target/wasm32-wasip1/release/scopegate.snapshot.wasm",
            ),
            Build::P3 => (
                "spin-p3.toml",
                "target/p3/wasm32-wasip2/release-p3/scopegate.wasm",
            ),
        }
    }
}

/// Builds the component with `policies` into `out` and writes `out/MANIFEST`,
/// a copy of the repository's manifest whose `source` is that build; its path.
pub fn build(policies: &Path, out: &Path, kind: Build) -> PathBuf {
    let root = repository_root();
    let (manifest, shipped_source) = kind.manifest();
    let (target, profile, features): (&str, &str, &[&str]) = match kind {
        Build::Shipped => ("wasm32-wasip1", "release", &["--features", "snapshot"]),
        Build::P3 => (
            "wasm32-wasip2",
            "release-p3",
            &["--no-default-features", "--features", "spin-p3"],
        ),
    };
    let output = Command::new("cargo")
        .args([
            "build",
            "--target",
            target,
            "--profile",
            profile,
            "-p",
            "scopegate",
        ])
        .args(features)
        .arg("--target-dir")
        .arg(out)
        .current_dir(&root)
        .env("SCOPEGATE_POLICY_DIR", policies)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .expect("run cargo build");
    assert!(
        output.status.success(),
        "building the test component with {} failed:\n{}",
        policies.display(),
        String::from_utf8_lossy(&output.stderr)
    );

    let text = std::fs::read_to_string(root.join(manifest)).unwrap();
    let source = format!("source = {shipped_source:?}");
    assert!(text.contains(&source), "{manifest}'s source moved");
    let mut wasm = out.join(target).join(profile).join("scopegate.wasm");
    if kind == Build::Shipped {
        let snapshot = wasm.with_file_name("scopegate.snapshot.wasm");
        let output = Command::new("cargo")
            .args([
                "run",
                "--quiet",
                "--release",
                "-p",
                "scopegate-snapshot",
                "--",
            ])
            .arg(&wasm)
            .arg(&snapshot)
            .current_dir(&root)
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .expect("run the snapshot step");
        assert!(
            output.status.success(),
            "the snapshot of the test component failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        wasm = snapshot;
    }
    let mut text = text.replace(&source, &format!("source = {:?}", wasm.to_str().unwrap()));
    // Built above; `spin build` has nothing to do.
    if let Some(start) = text.find("[component.scopegate.build]") {
        text.truncate(start);
    }
    let path = out.join(manifest);
    write_if_changed(&path, &text);
    path
}

/// Leaves the file (and its time stamp, which cargo watches) alone when the
/// content is the same.
pub fn write_if_changed(path: &Path, content: &str) {
    if std::fs::read_to_string(path).ok().as_deref() != Some(content) {
        std::fs::write(path, content).unwrap();
    }
}
