//! A real client: Debian's `skopeo` (containers/image, the code podman and
//! buildah use), run in an environment of its own: scratch HOME and
//! XDG_RUNTIME_DIR, an empty registries configuration, no proxy, plain HTTP
//! to loopback only, and a bounded run time.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// skopeo stops itself after this long ...
const COMMAND_TIMEOUT: &str = "90s";
/// ... and is killed if it has not after this long.
const KILL_AFTER: Duration = Duration::from_secs(120);

/// How skopeo authenticates to the registry for one image reference.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `--creds USER:PASSWORD` (a password or an API token).
    Creds(String, String),
    /// `--no-creds`.
    Anonymous,
    /// `--authfile FILE`, as `podman login` or `docker login` leave it.
    File(PathBuf),
}

impl Auth {
    pub fn creds(user: &str, password: &str) -> Auth {
        Auth::Creds(user.to_string(), password.to_string())
    }

    /// The flags for one side: `prefix` is `""`, `"src-"` or `"dest-"`.
    fn flags(&self, prefix: &str) -> Vec<String> {
        match self {
            Auth::Creds(user, password) => vec![format!("--{prefix}creds={user}:{password}")],
            Auth::Anonymous => vec![format!("--{prefix}no-creds")],
            Auth::File(path) => vec![format!("--{prefix}authfile={}", path.display())],
        }
    }
}

/// One finished skopeo run.
#[derive(Debug)]
pub struct Run {
    pub command: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn is_success(&self) -> bool {
        self.status.success()
    }

    /// Panics, showing what skopeo said, unless it succeeded.
    pub fn assert_success(&self) -> &Run {
        assert!(self.is_success(), "expected success: {self}");
        self
    }

    /// Panics unless skopeo failed and said the registry refused
    /// authorization (containers/image words a registry 401/403 so).
    pub fn assert_refused(&self) -> &Run {
        assert!(!self.is_success(), "expected a refusal: {self}");
        let stderr = self.stderr.to_ascii_lowercase();
        assert!(
            [
                "unauthorized",
                "authentication required",
                "denied",
                "401",
                "403"
            ]
            .iter()
            .any(|word| stderr.contains(word)),
            "expected an authorization error: {self}"
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.status, self.stdout, self.stderr
        )
    }
}

/// skopeo with its own HOME and configuration under one directory, shared by
/// the runs of one test (so its blob-location cache carries over from a push
/// to a later copy, as on a developer's machine).
pub struct Skopeo {
    program: PathBuf,
    dir: PathBuf,
    registries_conf: PathBuf,
    registries_d: PathBuf,
}

impl Skopeo {
    pub fn new(dir: &Path) -> Skopeo {
        let program = scopegate_harness::require_program("skopeo", "skopeo");
        for sub in ["home", "run", "tmp", "registries.d", "out"] {
            fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let registries_conf = dir.join("registries.conf");
        fs::write(&registries_conf, "unqualified-search-registries = []\n").unwrap();
        Skopeo {
            program,
            dir: dir.to_path_buf(),
            registries_d: dir.join("registries.d"),
            registries_conf,
        }
    }

    /// `skopeo copy SOURCE DESTINATION` for docker:// and oci: references,
    /// plain HTTP on the docker side, no signature policy.
    pub fn copy(
        &self,
        source: &str,
        source_auth: &Auth,
        destination: &str,
        destination_auth: &Auth,
        extra: &[String],
    ) -> Run {
        let mut args = vec!["copy".to_string(), "--retry-times=0".to_string()];
        args.extend_from_slice(extra);
        if source.starts_with("docker://") {
            args.push("--src-tls-verify=false".into());
            args.extend(source_auth.flags("src-"));
        }
        if destination.starts_with("docker://") {
            args.push("--dest-tls-verify=false".into());
            args.extend(destination_auth.flags("dest-"));
        }
        args.push(source.to_string());
        args.push(destination.to_string());
        self.run(&args)
    }

    /// `skopeo COMMAND` (inspect, list-tags, delete) on a docker:// reference.
    pub fn on_registry(&self, command: &str, extra: &[&str], reference: &str, auth: &Auth) -> Run {
        let mut args = vec![command.to_string(), "--tls-verify=false".to_string()];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args.extend(auth.flags(""));
        args.push(reference.to_string());
        self.run(&args)
    }

    /// Runs skopeo with `args` after the global flags, waiting at most
    /// [`KILL_AFTER`].
    pub fn run(&self, args: &[String]) -> Run {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let stdout_path = self.dir.join(format!("out/{n}.stdout"));
        let stderr_path = self.dir.join(format!("out/{n}.stderr"));
        let mut command = Command::new(&self.program);
        command
            .arg("--insecure-policy")
            .arg(format!("--command-timeout={COMMAND_TIMEOUT}"))
            .arg(format!("--registries.d={}", self.registries_d.display()))
            .arg(format!("--tmpdir={}", self.dir.join("tmp").display()))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.join("home"))
            .env("XDG_RUNTIME_DIR", self.dir.join("run"))
            .env("XDG_CONFIG_HOME", self.dir.join("home/.config"))
            .env("XDG_DATA_HOME", self.dir.join("home/.local/share"))
            .env("TMPDIR", self.dir.join("tmp"))
            .env("CONTAINERS_REGISTRIES_CONF", &self.registries_conf)
            .env("NO_PROXY", "*")
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(File::create(&stdout_path).unwrap()))
            .stderr(Stdio::from(File::create(&stderr_path).unwrap()));
        let shown = format!("skopeo {}", args.join(" "));
        let mut child = command
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {}: {error}", self.program.display()));
        let deadline = Instant::now() + KILL_AFTER;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{shown}` did not finish within {KILL_AFTER:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let run = Run {
            command: shown,
            status,
            stdout: fs::read_to_string(stdout_path).unwrap_or_default(),
            stderr: fs::read_to_string(stderr_path).unwrap_or_default(),
        };
        if std::env::var_os("SCOPEGATE_E2E_LOGS").is_some_and(|value| value == "1") {
            eprintln!("{run}");
        }
        run
    }
}
