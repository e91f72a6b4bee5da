//! A real registry: Debian's `docker-registry` (distribution 2.8) on a free
//! loopback port with token authentication pointing at scopegate,
//! filesystem storage in a scratch directory and deletes enabled.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::http::{self, Body, Reply};
use crate::process::{free_port, require_program, Process, Scratch};
use crate::spin::Spin;

/// How long the registry may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// What the registry's token authentication is configured with.
pub struct TokenAuth<'a> {
    pub realm: &'a str,
    pub service: &'a str,
    pub issuer: &'a str,
    pub root_cert_bundle: &'a Path,
}

/// A running `docker-registry serve`. Dropping it stops it.
pub struct Registry {
    process: Process,
    addr: SocketAddr,
}

impl Registry {
    /// Starts a registry keeping its storage, config and log under `dir`,
    /// and waits until it answers `GET /v2/` with 401 (token auth is on).
    pub fn start(dir: &Path, auth: &TokenAuth<'_>) -> Registry {
        Registry::start_with_config(dir, |addr| config_yml(addr, &dir.join("storage"), auth))
    }

    /// Starts a registry under `scratch/registry` whose token realm is
    /// `spin`'s `/token`, trusting `certificate_pem` (written beside it) for
    /// tokens of `service` from `issuer`.
    pub fn for_token_server(
        scratch: &Scratch,
        spin: &Spin,
        service: &str,
        issuer: &str,
        certificate_pem: &str,
    ) -> Registry {
        let bundle = scratch.file("signing-cert.pem", certificate_pem.as_bytes());
        let realm = spin.url("/token");
        Registry::start(
            &scratch.dir("registry"),
            &TokenAuth {
                realm: &realm,
                service,
                issuer,
                root_cert_bundle: &bundle,
            },
        )
    }

    /// Starts a registry with the configuration `config(addr)` returns for
    /// the address it is given, and waits as [`Registry::start`] does.
    pub fn start_with_config(dir: &Path, config: impl Fn(SocketAddr) -> String) -> Registry {
        let program = require_program("docker-registry", "docker-registry");
        std::fs::create_dir_all(dir.join("storage")).unwrap();
        let mut last_log = String::new();
        for attempt in 0..3 {
            let addr = free_port();
            let config_file = dir.join("config.yml");
            std::fs::write(&config_file, config(addr)).unwrap();
            let mut command = Command::new(&program);
            command
                .arg("serve")
                .arg(&config_file)
                // Nothing from the environment (REGISTRY_* overrides the config).
                .env_clear()
                .env("HOME", dir)
                .current_dir(dir);
            let log = dir.join(format!("registry-{attempt}.log"));
            let mut process = Process::spawn("docker-registry", command, &log);
            let ready = process.wait_until(READY_TIMEOUT, || {
                http::request(addr, "GET", "/v2/", &[], Body::None).is_ok()
            });
            let registry = Registry { process, addr };
            match ready {
                Ok(()) => {
                    let reply = registry.request("GET", "/v2/", &[]);
                    assert_eq!(
                        reply.status,
                        401,
                        "GET /v2/ must ask for a token:\n{}",
                        registry.log()
                    );
                    return registry;
                }
                Err(log) if log.contains("address already in use") => last_log = log,
                Err(log) => panic!("docker-registry did not start:\n{log}"),
            }
        }
        panic!("docker-registry found no free port:\n{last_log}");
    }

    /// `127.0.0.1:PORT`, the registry's name in image references.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Everything the registry logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// One request to the registry's HTTP API.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
        http::request(self.addr, method, path, headers, Body::None)
            .unwrap_or_else(|error| panic!("{method} {path} to the registry failed: {error}"))
    }
}

/// The configuration the tests run distribution with.
pub fn config_yml(addr: SocketAddr, storage: &Path, auth: &TokenAuth<'_>) -> String {
    // JSON strings are valid YAML scalars and quote whatever the paths hold.
    let quote = |value: &str| serde_json::Value::String(value.to_string()).to_string();
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
