//! What the single sign-on tests share: a person's machine (scratch HOME, docker and
//! XDG directories), the CLI's device login with the test approving at the provider, and
//! the credential helper run as docker runs it.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use scopegate_harness::{Idp, Person};
use serde_json::Value;

pub const CLIENT_ID: &str = "scopegate-cli";
pub const REGISTRY: &str = "registry.example.com:5000";
/// How long a test waits for the CLI to print the code or URL (a bound, not a measure).
pub const PROMPT_WAIT: Duration = Duration::from_secs(60);

/// One person's machine: their home and the directories the CLI and docker use, and
/// the registry they log in for.
pub struct Machine {
    root: tempfile::TempDir,
    registry: String,
}

impl Machine {
    /// A machine logging in for [`REGISTRY`].
    pub fn new() -> Machine {
        Machine::for_registry(REGISTRY)
    }

    /// A machine logging in for `registry` (`HOST:PORT`).
    pub fn for_registry(registry: &str) -> Machine {
        let machine = Machine {
            root: tempfile::tempdir().unwrap(),
            registry: registry.to_string(),
        };
        for dir in ["home", "docker", "config", "runtime"] {
            std::fs::create_dir_all(machine.root.path().join(dir)).unwrap();
        }
        machine
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    pub fn docker_config(&self) -> PathBuf {
        self.path("docker/config.json")
    }

    pub fn sso_dir(&self) -> PathBuf {
        self.path("config/scopegate/sso")
    }

    pub fn login_file(&self) -> PathBuf {
        self.sso_dir()
            .join(format!("{}.json", self.registry.replace(':', "_3a")))
    }

    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        let bin_dir = Path::new(env!("CARGO_BIN_EXE_docker-credential-scopegate"))
            .parent()
            .unwrap()
            .to_path_buf();
        let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        )))
        .unwrap();
        command
            .env("HOME", self.path("home"))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("XDG_CONFIG_HOME", self.path("config"))
            .env("XDG_RUNTIME_DIR", self.path("runtime"))
            .env("PATH", path)
            .env_remove("REGISTRY_AUTH_FILE")
            .env_remove("SCOPEGATE_OIDC_CLIENT_SECRET");
        command
    }

    /// `scopegate auth login --registry REGISTRY --oidc ISSUER --client-id CLIENT_ID ARGS`,
    /// started with stderr piped line by line to the returned channel.
    pub fn start_login(&self, idp: &Idp, args: &[&str]) -> (Child, mpsc::Receiver<String>) {
        let mut child = self
            .command(env!("CARGO_BIN_EXE_scopegate"))
            .args(["auth", "login", "--registry", &self.registry, "--oidc"])
            .arg(idp.issuer())
            .args(["--client-id", CLIENT_ID])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (lines, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        (child, receiver)
    }

    /// A device login that `person` approves at the provider; the finished login's
    /// output (stderr as printed).
    pub fn device_login(&self, idp: &Idp, person: &Person, args: &[&str]) -> Finished {
        let (child, lines) = self.start_login(idp, args);
        let mut seen = Vec::new();
        let user_code = loop {
            let line = lines
                .recv_timeout(PROMPT_WAIT)
                .unwrap_or_else(|_| panic!("no user code printed; stderr so far: {seen:#?}"));
            seen.push(line.clone());
            if let Some(code) = line.strip_prefix("and enter the code: ") {
                break code.to_string();
            }
        };
        assert_eq!(idp.pending_user_codes(), std::slice::from_ref(&user_code));
        idp.approve(&user_code, person);
        finish(child, lines, seen)
    }

    /// `docker-credential-scopegate ARGS` with `stdin`.
    pub fn helper(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = self
            .command(env!("CARGO_BIN_EXE_docker-credential-scopegate"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // An action that reads no input (a usage error) may exit before it is written.
        let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        if let Err(error) = written {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
        }
        child.wait_with_output().unwrap()
    }

    /// `get` for the machine's registry, which must succeed; its JSON answer.
    pub fn get(&self) -> Value {
        let output = self.helper(&["get"], &self.registry);
        assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    }
}

/// A login that has exited.
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

pub fn finish(child: Child, lines: mpsc::Receiver<String>, mut seen: Vec<String>) -> Finished {
    let output = child.wait_with_output().unwrap();
    seen.extend(lines.iter());
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: seen.join("\n"),
    }
}

pub fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

pub fn mia() -> Person {
    Person::new("mia").with_groups(&["platform", "dev"])
}
