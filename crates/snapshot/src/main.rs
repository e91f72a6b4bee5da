//! `scopegate-snapshot IN.wasm OUT.wasm`: the last step of `spin build`.
//!
//! `IN` is scopegate built for wasm32-wasip1 with the feature `snapshot`,
//! which exports `wizer.initialize`. Wizer runs that function once, here at
//! build time, and writes `OUT`: the same module with its memory as the
//! function left it. Spin turns the module into a component when it loads
//! it (as it does for every wasm32-wasip1 module), and every instance then
//! starts from that memory: P-256's base-point table (p256's lazily built
//! static, ~25 KiB) is there already, so no request builds it. The function
//! touches no secret and no random state (see `src/entry/snapshot.rs`).
//!
//! Wizer links WASI only, and the function calls nothing else; the module's
//! other imports (Spin's and `wasi:http`'s) are satisfied with stub modules,
//! generated here from the module's own import section, whose functions trap.
//!
//! Wizer is `$WIZER`, else `wizer` on PATH, else the prebuilt
//! `@bytecodealliance/wizer` of the npm registry through `npx` (Node.js).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod stubs;

/// The Wizer release this step is tested with.
const WIZER_NPM: &str = "@bytecodealliance/wizer@10.0.0";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: scopegate-snapshot IN.wasm OUT.wasm");
        return ExitCode::from(2);
    };
    match run(Path::new(input), Path::new(output)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("scopegate-snapshot: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Writes the snapshot beside `output` and renames it into place, so a
/// `spin up` reading `output` at the same time (two builds at once) sees
/// the old file or the new one, never half of one. An `output` newer than
/// `input` is kept.
fn run(input: &Path, output: &Path) -> Result<(), String> {
    if is_newer(output, input) {
        return Ok(());
    }
    let module = std::fs::read(input).map_err(|e| format!("reading {}: {e}", input.display()))?;
    let stubs = stubs::for_imports(&module)?;
    let dir = output
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(format!("snapshot-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let result = snapshot(input, output, &dir, &stubs);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn snapshot(
    input: &Path,
    output: &Path,
    dir: &Path,
    stubs: &[(String, Vec<u8>)],
) -> Result<(), String> {
    let mut preloads = BTreeMap::new();
    for (index, (name, bytes)) in stubs.iter().enumerate() {
        let path = dir.join(format!("stub-{index}.wasm"));
        std::fs::write(&path, bytes).map_err(|e| format!("writing {}: {e}", path.display()))?;
        preloads.insert(name.clone(), path);
    }
    let written = dir.join("snapshot.wasm");
    let mut command = wizer()?;
    command.arg(input).arg("-o").arg(&written).args([
        "--allow-wasi",
        "--init-func",
        "wizer.initialize",
    ]);
    for (name, path) in &preloads {
        command
            .arg("--preload")
            .arg(format!("{name}={}", path.display()));
    }
    let status = command
        .status()
        .map_err(|e| format!("running Wizer: {e}"))?;
    if !status.success() {
        return Err(format!("Wizer failed ({status})"));
    }
    std::fs::rename(&written, output).map_err(|e| format!("writing {}: {e}", output.display()))
}

fn is_newer(path: &Path, than: &Path) -> bool {
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    matches!((modified(path), modified(than)), (Some(a), Some(b)) if a > b)
}

/// The Wizer command: `$WIZER`, `wizer` on PATH, or npx's prebuilt one.
fn wizer() -> Result<Command, String> {
    if let Some(path) = std::env::var_os("WIZER") {
        return Ok(Command::new(path));
    }
    if on_path("wizer").is_some() {
        return Ok(Command::new("wizer"));
    }
    if on_path("npx").is_some() {
        let mut command = Command::new("npx");
        command.args(["--yes", WIZER_NPM]);
        return Ok(command);
    }
    Err(format!(
        "no Wizer: install Node.js (its npx fetches {WIZER_NPM} from the npm registry), \
         put `wizer` on PATH, or set WIZER to its path"
    ))
}

fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|path| path.is_file())
    })
}
