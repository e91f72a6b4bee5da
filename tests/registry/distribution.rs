//! A real registry: Debian's `docker-registry` (distribution 2.8) started
//! on a free loopback port with token authentication pointing at scopegate,
//! filesystem storage in a scratch directory and deletes enabled. Dropping
//! it kills the process.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the registry may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a port turns out to be taken between picking and binding it
/// before giving up.
const PORT_ATTEMPTS: usize = 3;

/// What the registry's token authentication is configured with.
pub struct TokenAuth<'a> {
    pub realm: &'a str,
    pub service: &'a str,
    pub issuer: &'a str,
    pub root_cert_bundle: &'a Path,
}

/// A running `docker-registry serve`.
pub struct Registry {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Registry {
    /// Starts a registry keeping its storage, config and log under `dir`, and
    /// waits until it answers `GET /v2/` with 401 (token auth is on).
    pub fn start(dir: &Path, auth: &TokenAuth<'_>) -> Registry {
        let program = super::require_program("docker-registry");
        let storage = dir.join("storage");
        fs::create_dir_all(&storage).unwrap();
        let mut last_log = String::new();
        for attempt in 0..PORT_ATTEMPTS {
            let addr = free_port();
            let config = dir.join("config.yml");
            fs::write(&config, config_yml(addr, &storage, auth)).unwrap();
            let log = dir.join(format!("registry-{attempt}.log"));
            let log_file = File::create(&log).unwrap();
            let child = Command::new(&program)
                .arg("serve")
                .arg(&config)
                // Nothing from the environment (REGISTRY_* overrides the config).
                .env_clear()
                .env("HOME", dir)
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(Stdio::from(log_file.try_clone().unwrap()))
                .stderr(Stdio::from(log_file))
                .spawn()
                .unwrap_or_else(|error| panic!("cannot start {}: {error}", program.display()));
            let mut registry = Registry { child, addr, log };
            match registry.wait_until_ready() {
                Ok(()) => return registry,
                Err(log) if log.contains("address already in use") => last_log = log,
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
        panic!("docker-registry found no free port in {PORT_ATTEMPTS} attempts:\n{last_log}");
    }

    /// Polls `GET /v2/` until the registry answers 401, or fails with its log
    /// if it exits or the bounded wait runs out.
    fn wait_until_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("exited with {status}:\n{}", self.log()));
            }
            if let Ok(reply) = self.try_request("GET", "/v2/", &[]) {
                if reply.status == 401 {
                    return Ok(());
                }
                return Err(format!(
                    "GET /v2/ answered {} instead of 401:\n{}",
                    reply.status,
                    self.log()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no answer within {READY_TIMEOUT:?}:\n{}",
                    self.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// `127.0.0.1:PORT`, the registry's name in image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// One request to the registry's HTTP API.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.try_request(method, path, headers)
            .unwrap_or_else(|error| panic!("{method} {path} to the registry failed: {error}"))
    }

    fn try_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> std::io::Result<Reply> {
        let mut stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
            self.addr
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        Reply::parse(&raw, method == "HEAD")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (the registry binds it itself).
fn free_port() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn config_yml(addr: SocketAddr, storage: &Path, auth: &TokenAuth<'_>) -> String {
    // JSON strings are valid YAML scalars and quote whatever the paths hold.
    let quote = |value: &str| serde_json::to_string(value).unwrap();
    format!(
        "version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: scopegate-registry-test
auth:
  token:
    realm: {realm}
    service: {service}
    issuer: {issuer}
    rootcertbundle: {bundle}
",
        storage = quote(&storage.display().to_string()),
        addr = quote(&addr.to_string()),
        realm = quote(auth.realm),
        service = quote(auth.service),
        issuer = quote(auth.issuer),
        bundle = quote(&auth.root_cert_bundle.display().to_string()),
    )
}

/// One HTTP response from the registry.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn parse(raw: &[u8], is_head: bool) -> std::io::Result<Reply> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let split = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .ok_or_else(|| invalid("no HTTP head"))?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("no status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let mut body = if is_head {
            Vec::new()
        } else {
            raw[split + 4..].to_vec()
        };
        if headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"))
        {
            body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(end + 2..end + 2 + size)?);
        data = data.get(end + 2 + size + 2..)?;
    }
}
