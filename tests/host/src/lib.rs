//! A small stand-in for `spin up`, built on wasmtime, for testing scopegate.
//!
//! [`TestHost::start`] compiles the component `.wasm` once, then serves HTTP on
//! 127.0.0.1 with one fresh instance per request, as Spin does. It provides
//! WASI 0.2, `wasi:http` (outgoing requests are denied), and Spin's
//! `fermyon:spin/key-value@2.0.0` (one in-memory store, `default`) and
//! `fermyon:spin/variables@2.0.0`. Anything else the component imports makes
//! `start` fail, as it would fail under Spin.
//!
//! ```no_run
//! use scopegate_testhost::{build_component, HostOptions, TestHost};
//! # fn main() -> anyhow::Result<()> {
//! let mut opts = HostOptions::new(build_component()?);
//! opts.variables.insert("issuer".into(), "test".into());
//! let host = TestHost::start(opts)?;
//! let url = host.url("/token?service=registry");
//! # let _ = url;
//! assert_eq!(host.kv_stats().sets, 0);
//! # Ok(())
//! # }
//! ```

mod server;
mod spin;
mod state;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context as _};

use crate::state::{lock, Shared};

/// How to start a [`TestHost`].
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// The component to run.
    pub wasm: PathBuf,
    /// Spin variables (lowercase names), as resolved by Spin's providers.
    pub variables: BTreeMap<String, String>,
    /// Initial content of the `default` key-value store.
    pub kv: BTreeMap<String, Vec<u8>>,
    /// Artificial duration of each key-value `set` (Spin's SQLite store
    /// fsyncs); sets are serialised while it runs. Default 0.
    pub set_delay: Duration,
    /// Where to listen. Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Keep component stdout/stderr for [`TestHost::logs`]. Default true.
    pub capture_logs: bool,
    /// Also copy component stdout/stderr to this process's stderr.
    /// Default: true when the environment has `SCOPEGATE_HOST_ECHO=1`.
    pub echo_logs: bool,
    /// Seconds added to the wall clock the component reads (negative: the
    /// component lives in the past), to test token expiry without waiting.
    pub clock_offset_secs: i64,
}

impl HostOptions {
    /// Options for running `wasm` with no variables and an empty store.
    pub fn new(wasm: impl Into<PathBuf>) -> Self {
        HostOptions {
            wasm: wasm.into(),
            variables: BTreeMap::new(),
            kv: BTreeMap::new(),
            set_delay: Duration::ZERO,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            capture_logs: true,
            echo_logs: std::env::var_os("SCOPEGATE_HOST_ECHO").is_some_and(|v| v == "1"),
            clock_offset_secs: 0,
        }
    }
}

/// Numbers of key-value calls the component made since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvStats {
    /// `store.get` calls.
    pub gets: u64,
    /// `store.set` calls.
    pub sets: u64,
    /// `store.delete` calls.
    pub deletes: u64,
    /// `store.exists` calls.
    pub exists: u64,
    /// `store.get-keys` calls.
    pub get_keys: u64,
}

/// Linear memory of the component's instances since start (one instance
/// serves one request).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Requests whose instance allocated linear memory.
    pub requests: u64,
    /// The largest linear memory one request's instance held, in bytes (the
    /// sum of its core memories at their largest). Linear memory never
    /// shrinks, so this is the request's peak.
    pub peak_bytes: u64,
    /// The linear memory of the request whose instance was dropped last, in
    /// bytes: a typical request's, when all requests are alike.
    pub last_bytes: u64,
}

/// A running host. Dropping it stops the server.
pub struct TestHost {
    addr: SocketAddr,
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TestHost {
    /// Compile and link the component, then serve it in the background.
    ///
    /// Fails if the file cannot be compiled, if it imports anything the host
    /// does not provide (the error names the import), or if a variable name is
    /// not a valid Spin name.
    pub fn start(opts: HostOptions) -> anyhow::Result<TestHost> {
        for name in opts.variables.keys() {
            spin::check_variable_name(name).map_err(anyhow::Error::msg)?;
        }
        let shared = Arc::new(Shared {
            kv: Mutex::new(opts.kv),
            stats: Default::default(),
            memory: Default::default(),
            disk: tokio::sync::Mutex::new(()),
            set_delay: opts.set_delay,
            variables: opts.variables,
            logs: Mutex::new(Vec::new()),
            capture_logs: opts.capture_logs,
            echo_logs: opts.echo_logs,
            clock_offset_secs: opts.clock_offset_secs,
        });

        let listener = std::net::TcpListener::bind(opts.listen)
            .with_context(|| format!("cannot listen on {}", opts.listen))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let server = Arc::new(server::Server::new(&opts.wasm, shared.clone(), addr)?);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("scopegate-host")
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(server.serve(listener));

        Ok(TestHost {
            addr,
            shared,
            runtime: Some(runtime),
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` followed by `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    /// Read a key of the `default` store (not counted in [`KvStats`]).
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        lock(&self.shared.kv).get(key).cloned()
    }

    /// Write a key of the `default` store (not counted in [`KvStats`]).
    pub fn kv_set(&self, key: &str, value: Vec<u8>) {
        lock(&self.shared.kv).insert(key.to_string(), value);
    }

    /// Remove a key of the `default` store (not counted in [`KvStats`]).
    pub fn kv_delete(&self, key: &str) {
        lock(&self.shared.kv).remove(key);
    }

    /// All keys of the `default` store, sorted.
    pub fn kv_keys(&self) -> Vec<String> {
        lock(&self.shared.kv).keys().cloned().collect()
    }

    /// Key-value calls made by the component so far.
    pub fn kv_stats(&self) -> KvStats {
        let s = &self.shared.stats;
        KvStats {
            gets: s.gets.load(Ordering::Relaxed),
            sets: s.sets.load(Ordering::Relaxed),
            deletes: s.deletes.load(Ordering::Relaxed),
            exists: s.exists.load(Ordering::Relaxed),
            get_keys: s.get_keys.load(Ordering::Relaxed),
        }
    }

    /// Linear memory used by requests so far.
    pub fn memory_stats(&self) -> MemoryStats {
        let m = &self.shared.memory;
        MemoryStats {
            requests: m.requests.load(Ordering::Relaxed),
            peak_bytes: m.peak_bytes.load(Ordering::Relaxed),
            last_bytes: m.last_bytes.load(Ordering::Relaxed),
        }
    }

    /// Everything the component wrote to stdout and stderr, in order. Lines
    /// from concurrent requests are never mixed within a line.
    pub fn logs(&self) -> String {
        String::from_utf8_lossy(&lock(&self.shared.logs)).into_owned()
    }

    /// Forget the logs collected so far.
    pub fn clear_logs(&self) {
        lock(&self.shared.logs).clear();
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        // Does not block, so a host may be dropped inside an async test too.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Build the workspace's `scopegate` component once per process and return
/// the path of the `.wasm`, or the file named by `SCOPEGATE_WASM` if set.
///
/// Runs `cargo build --target wasm32-wasip2 --release -p scopegate` in the
/// workspace root, with the build's output shown.
pub fn build_component() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| build_component_uncached().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_component_uncached() -> anyhow::Result<PathBuf> {
    if let Some(wasm) = std::env::var_os("SCOPEGATE_WASM") {
        let wasm = PathBuf::from(wasm);
        if !wasm.is_file() {
            bail!("SCOPEGATE_WASM={} is not a file", wasm.display());
        }
        return Ok(wasm);
    }

    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = root
        .canonicalize()
        .with_context(|| format!("workspace root {} not found", root.display()))?;
    check_wasm_target()?;

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--release",
            "-p",
            "scopegate",
        ])
        .current_dir(&root)
        // Set by cargo for build scripts only; it would override RUSTFLAGS.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .status()
        .context("cannot run cargo")?;
    if !status.success() {
        bail!("building the scopegate component failed ({status})");
    }

    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    };
    let wasm = target_dir.join("wasm32-wasip2/release/scopegate.wasm");
    if !wasm.is_file() {
        bail!("cargo succeeded but {} does not exist", wasm.display());
    }
    Ok(wasm)
}

/// Fail clearly if the Rust toolchain cannot build for wasm32-wasip2.
fn check_wasm_target() -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc")?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let target = Path::new(&sysroot).join("lib/rustlib/wasm32-wasip2");
    if !out.status.success() || !target.is_dir() {
        bail!(
            "the wasm32-wasip2 target is not installed for this toolchain \
             ({} missing): run rustup target add wasm32-wasip2",
            target.display()
        );
    }
    Ok(())
}
