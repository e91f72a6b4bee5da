//! A throwaway `redis-server` on a free loopback port, for Spin's key-value
//! store shared by several Spin instances. It keeps an append-only file
//! (fsync on every write) in its scratch directory, so it can be stopped and
//! started again on the same port without losing what was written: a store
//! outage, not a store wipe.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, is_listening, require_program, Process, Scratch};

/// A running Redis. Dropping it stops it.
pub struct Redis {
    process: Option<Process>,
    addr: SocketAddr,
    program: std::path::PathBuf,
    starts: usize,
    scratch: Scratch,
}

impl Redis {
    /// Starts `redis-server` on a free 127.0.0.1 port and waits until it
    /// accepts connections.
    pub fn start() -> Redis {
        let program = require_program("redis-server", "redis-server");
        let mut redis = Redis {
            process: None,
            addr: free_port(),
            program,
            starts: 0,
            scratch: Scratch::new("redis"),
        };
        let mut last_log = String::new();
        for _ in 0..3 {
            match redis.launch() {
                Ok(()) => return redis,
                Err(log) if log.contains("in use") => {
                    last_log = log;
                    redis.stop();
                    redis.addr = free_port();
                }
                Err(log) => panic!("redis-server did not start:\n{log}"),
            }
        }
        panic!("redis-server found no free port:\n{last_log}");
    }

    fn launch(&mut self) -> Result<(), String> {
        let mut command = Command::new(&self.program);
        command
            .args(["--bind", "127.0.0.1", "--port"])
            .arg(self.addr.port().to_string())
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
            ])
            .arg(self.scratch.path());
        let log = self
            .scratch
            .path()
            .join(format!("redis-{}.log", self.starts));
        self.starts += 1;
        let mut process = Process::spawn("redis-server", command, &log);
        let addr = self.addr;
        let ready = process.wait_until(Duration::from_secs(20), || is_listening(addr));
        self.process = Some(process);
        ready
    }

    /// Stops Redis (SIGTERM, then SIGKILL): every request that needs the
    /// store now finds it unreachable.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.terminate(Duration::from_secs(10));
        }
    }

    /// Starts Redis again on the same port with the same data.
    pub fn restart(&mut self) {
        self.stop();
        if let Err(log) = self.launch() {
            panic!("redis-server did not start again:\n{log}");
        }
    }

    /// `redis://127.0.0.1:PORT`, for Spin's runtime config.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
