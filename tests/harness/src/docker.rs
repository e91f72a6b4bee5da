//! A private `dockerd` (Debian's `docker.io`) for the docker CLI, started the
//! way it runs on a machine without a container network of its own (the
//! README's "Use it with your registry" gives the same command line):
//!
//! ```text
//! dockerd --storage-driver=vfs --iptables=false --ip6tables=false --bridge=none \
//!   --insecure-registry 127.0.0.0/8 --data-root DIR --exec-root DIR \
//!   --pidfile FILE --host unix://SOCK
//! ```
//!
//! then the docker CLI with `DOCKER_HOST=unix://SOCK`. vfs storage needs no
//! kernel overlay support, no iptables and no bridge need no network
//! privileges, and loopback registries are trusted over plain HTTP. Its data
//! and exec roots live in a scratch directory; it is stopped by PID and the
//! network-namespace mount it leaves is removed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::process::{require_program, Process, Scratch};

/// dockerd's flags besides its paths (the README shows the same command).
pub const DOCKERD_FLAGS: [&str; 6] = [
    "--storage-driver=vfs",
    "--iptables=false",
    "--ip6tables=false",
    "--bridge=none",
    "--insecure-registry",
    "127.0.0.0/8",
];

/// One dockerd at a time in a test process: they would share the machine's
/// docker setup (its network-namespace mount among it).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running dockerd and a docker config directory of its own.
pub struct Dockerd {
    process: Process,
    socket: PathBuf,
    exec_root: PathBuf,
    config: PathBuf,
    scratch: Scratch,
    // Dropped last: the next dockerd starts once this one is gone.
    _one_at_a_time: MutexGuard<'static, ()>,
}

impl Dockerd {
    /// Starts dockerd, once any other of this process is gone, and waits
    /// until `docker info` answers.
    pub fn start() -> Dockerd {
        let one_at_a_time = ONE_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let program = require_program("dockerd", "docker.io");
        require_program("docker", "docker.io");
        // Short paths: containerd's socket lives under the exec root.
        let scratch = Scratch::new("dockerd");
        let data_root = scratch.dir("data");
        let exec_root = scratch.dir("exec");
        let config = scratch.dir("config");
        let socket = scratch.path().join("docker.sock");
        let mut command = Command::new(program);
        command
            .args(DOCKERD_FLAGS)
            .arg("--data-root")
            .arg(&data_root)
            .arg("--exec-root")
            .arg(&exec_root)
            .arg("--pidfile")
            .arg(scratch.path().join("docker.pid"))
            .arg("--host")
            .arg(format!("unix://{}", socket.display()));
        let log = scratch.path().join("dockerd.log");
        let process = Process::spawn("dockerd", command, &log);
        let mut dockerd = Dockerd {
            process,
            socket,
            exec_root,
            config,
            scratch,
            _one_at_a_time: one_at_a_time,
        };
        let socket = dockerd.socket.clone();
        let config = dockerd.config.clone();
        let ready = dockerd.process.wait_until(Duration::from_secs(60), || {
            socket.exists()
                && docker_command(&socket, &config, &["info"])
                    .output()
                    .is_ok_and(|out| out.status.success())
        });
        if let Err(log) = ready {
            panic!("dockerd did not start:\n{log}");
        }
        dockerd
    }

    /// Runs `docker ARGS` against this dockerd with this config directory,
    /// feeding `stdin`.
    pub fn docker(&self, args: &[&str], stdin: Option<&str>) -> Output {
        crate::process::run_with_stdin(&mut docker_command(&self.socket, &self.config, args), stdin)
    }

    /// The environment that points a docker CLI (or a shell script running
    /// one) at this dockerd and its config directory.
    pub fn env(&self) -> [(&'static str, std::ffi::OsString); 2] {
        [
            (
                "DOCKER_HOST",
                format!("unix://{}", self.socket.display()).into(),
            ),
            ("DOCKER_CONFIG", self.config.clone().into_os_string()),
        ]
    }

    /// The docker CLI's `config.json` as it is now (empty object if none).
    pub fn config_json(&self) -> String {
        std::fs::read_to_string(self.config.join("config.json")).unwrap_or_else(|_| "{}".into())
    }

    /// dockerd's own log.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// `docker import` of a one-file image (`hello.txt` holding `text`) tagged
    /// `reference`, made from a fresh tarball in this dockerd's scratch directory.
    pub fn import(&self, reference: &str, text: &str) -> Output {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.scratch.dir(&format!("rootfs-{n}"));
        std::fs::write(dir.join("hello.txt"), text).unwrap();
        let tarball = self.scratch.path().join(format!("rootfs-{n}.tar"));
        let status = Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tarball)
            .arg("hello.txt")
            .status()
            .unwrap();
        assert!(status.success(), "tar of the image's root filesystem");
        self.docker(&["import", tarball.to_str().unwrap(), reference], None)
    }

    /// The scratch directory (for image tarballs and the like).
    pub fn scratch(&self) -> &Scratch {
        &self.scratch
    }
}

fn docker_command(socket: &Path, config: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("docker");
    command
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", config)
        // No credential helper from the machine's environment.
        .env_remove("DOCKER_CERT_PATH")
        .env_remove("DOCKER_TLS_VERIFY");
    command
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.process.terminate(Duration::from_secs(15));
        // dockerd mounts its netns directory and may leave it behind.
        let netns = self.exec_root.join("netns");
        let _ = Command::new("umount")
            .arg(&netns)
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("umount")
            .arg("-l")
            .arg(&netns)
            .stderr(Stdio::null())
            .status();
    }
}
