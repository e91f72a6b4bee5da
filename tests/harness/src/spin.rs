//! The built component under real `spin up`, the way users run it: a
//! manifest, a runtime config file with a static variables provider, a free
//! loopback port and a state directory of its own.
//!
//! Spin is found as `$SPIN`, else `spin` on PATH, else the repository's
//! neighbour `../shared/tools/spin`; without any, starting fails saying how
//! to install Spin.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::net::SocketAddr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::http::{self, Body};
use crate::process::{find_on_path, free_port, Process, Scratch};

/// How long Spin may take to answer `/healthz` after it starts (a
/// `spin up --build` compiles first).
const READY_TIMEOUT: Duration = Duration::from_secs(600);
/// How often the picked port may turn out to be taken before giving up.
const PORT_ATTEMPTS: usize = 3;

/// The repository root (where `spin.toml` is).
pub fn repository_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// The Spin binary: `$SPIN`, else `spin` on PATH, else
/// `../shared/tools/spin` beside the repository.
pub fn spin_binary() -> PathBuf {
    if let Some(spin) = std::env::var_os("SPIN").filter(|value| !value.is_empty()) {
        let spin = PathBuf::from(spin);
        assert!(
            spin.is_file(),
            "SPIN={} is not a file; point SPIN at a Spin 4.x binary",
            spin.display()
        );
        return spin;
    }
    if let Some(spin) = find_on_path("spin") {
        return spin;
    }
    let shared = repository_root().join("../shared/tools/spin");
    if shared.is_file() {
        return shared;
    }
    panic!(
        "Spin was not found: scopegate's integration tests run the component under real \
         Spin 4.x. Install it (https://spinframework.dev/v3/install: \
         `curl -fsSL https://spinframework.dev/downloads/install.sh | bash`, then put `spin` \
         on PATH) or set SPIN=/path/to/spin."
    )
}

/// Builds the application of `manifest` with `spin build`, once per test
/// process and manifest, as the README's `spin up --build` does.
pub fn build(manifest: &Path) {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, Result<(), String>>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let result = built.entry(manifest.to_path_buf()).or_insert_with(|| {
        let output = Command::new(spin_binary())
            .args(["build", "-f"])
            .arg(manifest)
            // Set by cargo for build scripts only; it would override RUSTFLAGS.
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .map_err(|error| format!("cannot run spin build: {error}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`spin build -f {}` failed ({}):\n{}\n{}",
                manifest.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(message) = result {
        panic!("{message}");
    }
}

/// How to start [`Spin`].
#[derive(Debug, Clone)]
pub struct SpinOptions {
    /// The application manifest. Default: the repository's `spin.toml`.
    pub manifest: PathBuf,
    /// Values of the static variables provider (lowercase names).
    pub variables: BTreeMap<String, String>,
    /// Seeds for the default key-value store, given to Spin as
    /// `--key-value KEY=VALUE`.
    pub kv: BTreeMap<String, Vec<u8>>,
    /// Back the default store with this Redis (`redis://127.0.0.1:PORT`)
    /// instead of Spin's SQLite file.
    pub redis_url: Option<String>,
    /// Seconds added to the wall clock Spin (and so the component) reads,
    /// through libfaketime (Debian's `faketime`); negative is the past.
    pub clock_offset_secs: i64,
    /// More `spin up` arguments.
    pub args: Vec<String>,
    /// Environment variables for `spin up`, such as the `SPIN_VARIABLE_*`
    /// that spin-operator sets from a SpinApp's variables.
    pub env: BTreeMap<String, String>,
}

impl Default for SpinOptions {
    fn default() -> Self {
        SpinOptions {
            manifest: repository_root().join("spin.toml"),
            variables: BTreeMap::new(),
            kv: BTreeMap::new(),
            redis_url: None,
            clock_offset_secs: 0,
            args: Vec::new(),
            env: BTreeMap::new(),
        }
    }
}

/// A running `spin up`. Dropping it stops Spin and removes its state.
pub struct Spin {
    process: Process,
    addr: SocketAddr,
    state: PathBuf,
    is_sqlite: bool,
    log_start: Mutex<usize>,
    secrets: Mutex<Vec<String>>,
    // Dropped last: Spin is gone before its state is removed.
    _scratch: Scratch,
}

impl Spin {
    /// Builds the manifest's application (once per process), starts `spin
    /// up` on a free loopback port and waits until `/healthz` answers.
    pub fn start(options: SpinOptions) -> Spin {
        build(&options.manifest);
        let scratch = Scratch::new("spin");
        let runtime_config = scratch.file(
            "runtime-config.toml",
            runtime_config(&options.variables, options.redis_url.as_deref()).as_bytes(),
        );
        let mut args: Vec<OsString> = vec![
            "up".into(),
            "-f".into(),
            options.manifest.clone().into(),
            "--runtime-config-file".into(),
            runtime_config.into(),
        ];
        for (key, value) in &options.kv {
            let mut pair = OsString::from(format!("{key}="));
            pair.push(OsStr::from_bytes(value));
            args.push("--key-value".into());
            args.push(pair);
        }
        args.extend(options.args.iter().map(OsString::from));
        let cwd = scratch.path().to_path_buf();
        Spin::launch(
            args,
            &cwd,
            scratch,
            options.clock_offset_secs,
            options.redis_url.is_none(),
            &options.env,
        )
    }

    /// Runs `spin ARGS` in `cwd` exactly as given (a command line from the
    /// README, say), but for `--listen` (a free loopback port instead) and
    /// `--state-dir` (a scratch directory instead).
    pub fn start_command_line(args: &[String], cwd: &Path) -> Spin {
        let mut kept: Vec<OsString> = Vec::new();
        let mut words = args.iter();
        while let Some(word) = words.next() {
            match word.as_str() {
                // Replaced by the scratch state directory and the free port.
                "--state-dir" | "--listen" => {
                    words.next();
                }
                _ if word.starts_with("--state-dir=") || word.starts_with("--listen=") => {}
                _ => kept.push(word.into()),
            }
        }
        let args = kept;
        Spin::launch(args, cwd, Scratch::new("spin"), 0, true, &BTreeMap::new())
    }

    fn launch(
        args: Vec<OsString>,
        cwd: &Path,
        scratch: Scratch,
        clock_offset_secs: i64,
        is_sqlite: bool,
        env: &BTreeMap<String, String>,
    ) -> Spin {
        let state = scratch.dir("state");
        let mut last_error = String::new();
        for attempt in 0..PORT_ATTEMPTS {
            let addr = free_port();
            let mut command = Command::new(spin_binary());
            command
                .args(&args)
                .arg("--listen")
                .arg(addr.to_string())
                .arg("--state-dir")
                .arg(&state)
                .envs(env)
                .current_dir(cwd)
                // Set by cargo for build scripts only; it would override
                // RUSTFLAGS in a `spin up --build`.
                .env_remove("CARGO_ENCODED_RUSTFLAGS");
            if clock_offset_secs != 0 {
                fake_clock(&mut command, clock_offset_secs);
            }
            let log = scratch.path().join(format!("spin-{attempt}.log"));
            let mut process = Process::spawn("spin up", command, &log);
            let ready = process.wait_until(READY_TIMEOUT, || {
                http::request(addr, "GET", "/healthz", &[], Body::None).is_ok()
            });
            match ready {
                Ok(()) => {
                    let spin = Spin {
                        process,
                        addr,
                        is_sqlite,
                        state,
                        log_start: Mutex::new(0),
                        secrets: Mutex::new(Vec::new()),
                        _scratch: scratch,
                    };
                    // The readiness probe is not the test's request.
                    spin.clear_logs();
                    return spin;
                }
                Err(log) if log.contains("in use") => last_error = log,
                Err(log) => panic!("spin up did not start:\n{log}"),
            }
        }
        panic!("spin up found no free port in {PORT_ATTEMPTS} attempts:\n{last_error}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` followed by `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What `spin up` itself printed (its own messages and the component's
    /// output, which it echoes).
    pub fn spin_output(&self) -> String {
        self.process.log()
    }

    /// The component's stdout since it was ready (its readiness probe left
    /// out) or since [`Spin::clear_logs`]: one JSON line per request. Waits until Spin has written what it had.
    pub fn logs(&self) -> String {
        let file = self.state.join("logs/scopegate_stdout.txt");
        let mut text = std::fs::read_to_string(&file).unwrap_or_default();
        // Spin copies the component's output to the file in the background:
        // wait until it stops growing.
        for _ in 0..40 {
            std::thread::sleep(Duration::from_millis(25));
            let again = std::fs::read_to_string(&file).unwrap_or_default();
            if again.len() == text.len() {
                break;
            }
            text = again;
        }
        let start = *self.log_start.lock().unwrap_or_else(|p| p.into_inner());
        text.get(start..).unwrap_or_default().to_string()
    }

    /// Registers a secret (password, API token, refresh token, signed
    /// token, key) the test used with this Spin: when the Spin is dropped at
    /// the end of a passing test, neither the component's logs nor Spin's own
    /// output may contain any registered secret, or the test fails.
    pub fn forbid_in_logs(&self, secret: &str) {
        if secret.len() >= 6 {
            let mut secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
            if !secrets.iter().any(|known| known == secret) {
                secrets.push(secret.to_string());
            }
        }
    }

    /// The registered secrets found in the logs, if any.
    fn leaked_secrets(&self) -> Vec<String> {
        let logs = format!(
            "{}\n{}\n{}",
            std::fs::read_to_string(self.state.join("logs/scopegate_stdout.txt"))
                .unwrap_or_default(),
            std::fs::read_to_string(self.state.join("logs/scopegate_stderr.txt"))
                .unwrap_or_default(),
            self.spin_output()
        );
        let secrets = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        secrets
            .iter()
            .filter(|secret| logs.contains(secret.as_str()))
            .cloned()
            .collect()
    }

    /// Forgets the log so far: [`Spin::logs`] shows only what follows.
    pub fn clear_logs(&self) {
        let file = self.state.join("logs/scopegate_stdout.txt");
        let _ = self.logs();
        let length = std::fs::metadata(file).map_or(0, |meta| meta.len());
        *self.log_start.lock().unwrap_or_else(|p| p.into_inner()) =
            usize::try_from(length).unwrap_or(usize::MAX);
    }

    /// Spin's SQLite key-value file, opened as another process would.
    fn database(&self) -> rusqlite::Connection {
        assert!(
            self.is_sqlite,
            "direct store access is for Spin's SQLite store; this Spin uses Redis"
        );
        let path = self.state.join("sqlite_key_value.db");
        let connection = rusqlite::Connection::open(&path)
            .unwrap_or_else(|error| panic!("cannot open {}: {error}", path.display()));
        connection
            .busy_timeout(Duration::from_secs(10))
            .unwrap_or_else(|error| panic!("busy_timeout: {error}"));
        connection
    }

    /// The value under `key` in the default store.
    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        use rusqlite::OptionalExtension as _;
        self.database()
            .query_row(
                "SELECT value FROM spin_key_value WHERE store = 'default' AND key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()
            .unwrap_or_else(|error| panic!("kv get {key}: {error}"))
    }

    /// Sets `key` in the default store, behind the component's back.
    pub fn kv_set(&self, key: &str, value: Vec<u8>) {
        self.database()
            .execute(
                "INSERT INTO spin_key_value (store, key, value) VALUES ('default', ?1, ?2) \
                 ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )
            .unwrap_or_else(|error| panic!("kv set {key}: {error}"));
    }

    /// Removes `key` from the default store.
    pub fn kv_delete(&self, key: &str) {
        self.database()
            .execute(
                "DELETE FROM spin_key_value WHERE store = 'default' AND key = ?1",
                [key],
            )
            .unwrap_or_else(|error| panic!("kv delete {key}: {error}"));
    }

    /// Every key in the default store, sorted.
    pub fn kv_keys(&self) -> Vec<String> {
        let database = self.database();
        let mut statement = database
            .prepare("SELECT key FROM spin_key_value WHERE store = 'default' ORDER BY key")
            .unwrap_or_else(|error| panic!("kv keys: {error}"));
        let keys = statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .unwrap_or_else(|error| panic!("kv keys: {error}"));
        keys
    }

    /// Starts watching the store for writes: [`StoreWatch::has_written`]
    /// tells whether anything committed to it since (even a write of an
    /// unchanged value).
    pub fn watch_store(&self) -> StoreWatch {
        let connection = self.database();
        let version = data_version(&connection);
        StoreWatch {
            connection,
            version,
        }
    }

    /// Takes an exclusive lock on Spin's SQLite store, as a stuck backup or a
    /// failing disk would: until the guard is dropped, Spin can neither read
    /// nor write it.
    pub fn lock_store(&self) -> StoreLock {
        let connection = self.database();
        connection
            .execute_batch("BEGIN EXCLUSIVE")
            .unwrap_or_else(|error| panic!("BEGIN EXCLUSIVE: {error}"));
        StoreLock { connection }
    }

    /// Stops Spin (SIGTERM, then SIGKILL after 5 s).
    pub fn stop(&mut self) {
        self.process.terminate(Duration::from_secs(5));
    }
}

impl Drop for Spin {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            let leaked = self.leaked_secrets();
            assert!(
                leaked.is_empty(),
                "secrets appear in the logs: {leaked:?}\n{}",
                self.logs()
            );
        }
    }
}

/// See [`Spin::lock_store`]. Dropping it releases the lock.
pub struct StoreLock {
    connection: rusqlite::Connection,
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        let _ = self.connection.execute_batch("ROLLBACK");
    }
}

/// See [`Spin::watch_store`].
pub struct StoreWatch {
    connection: rusqlite::Connection,
    version: i64,
}

impl StoreWatch {
    /// Whether another connection (Spin) committed a change since the watch
    /// started.
    pub fn has_written(&self) -> bool {
        data_version(&self.connection) != self.version
    }
}

fn data_version(connection: &rusqlite::Connection) -> i64 {
    connection
        .query_row("PRAGMA data_version", [], |row| row.get(0))
        .unwrap_or_else(|error| panic!("PRAGMA data_version: {error}"))
}

/// A runtime config file: the static variables provider, and the default
/// store on Redis when asked.
pub fn runtime_config(variables: &BTreeMap<String, String>, redis_url: Option<&str>) -> String {
    // JSON strings are valid TOML basic strings (same escapes).
    let quote = |text: &str| serde_json::Value::String(text.to_string()).to_string();
    let mut config =
        String::from("[[variables_provider]]\ntype = \"static\"\n\n[variables_provider.values]\n");
    for (name, value) in variables {
        config.push_str(&format!("{name} = {}\n", quote(value)));
    }
    if let Some(url) = redis_url {
        config.push_str(&format!(
            "\n[key_value_store.default]\ntype = \"redis\"\nurl = {}\n",
            quote(url)
        ));
    }
    config
}

/// Runs `command` with its wall clock shifted by `offset_secs` through
/// libfaketime, leaving the monotonic clock (timers) alone.
fn fake_clock(command: &mut Command, offset_secs: i64) {
    let library = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.is_file())
    .unwrap_or_else(|| {
        panic!(
            "libfaketime is not installed: the expiry tests shift Spin's clock with it. \
             `sudo apt-get install faketime` (.ci/run installs it)"
        )
    });
    command
        .env("LD_PRELOAD", library)
        .env("FAKETIME", format!("{offset_secs:+}"))
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
}
