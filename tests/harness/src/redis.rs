//! A throwaway `redis-server` on a free loopback port, for Spin's key-value
//! store shared by several Spin instances.

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use crate::process::{free_port, is_listening, require_program, Process, Scratch};

/// A running Redis with nothing saved to disk. Dropping it stops it.
pub struct Redis {
    process: Process,
    addr: SocketAddr,
    _scratch: Scratch,
}

impl Redis {
    /// Starts `redis-server` on a free 127.0.0.1 port and waits until it
    /// accepts connections.
    pub fn start() -> Redis {
        let program = require_program("redis-server", "redis-server");
        let scratch = Scratch::new("redis");
        let mut last_log = String::new();
        for attempt in 0..3 {
            let addr = free_port();
            let mut command = Command::new(&program);
            command
                .args(["--bind", "127.0.0.1", "--port"])
                .arg(addr.port().to_string())
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(scratch.path());
            let log = scratch.path().join(format!("redis-{attempt}.log"));
            let mut process = Process::spawn("redis-server", command, &log);
            match process.wait_until(Duration::from_secs(20), || is_listening(addr)) {
                Ok(()) => {
                    return Redis {
                        process,
                        addr,
                        _scratch: scratch,
                    }
                }
                Err(log) if log.contains("in use") => last_log = log,
                Err(log) => panic!("redis-server did not start:\n{log}"),
            }
        }
        panic!("redis-server found no free port:\n{last_log}");
    }

    /// `redis://127.0.0.1:PORT`, for Spin's runtime config.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}
