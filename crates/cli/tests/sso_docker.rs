//! Single sign-on end to end: a person with only an account at the company's identity
//! provider (the harness's [`Idp`]) runs one `scopegate auth login --oidc`, approves the
//! device code, and from then on the real docker CLI (a private dockerd) pushes and pulls
//! through Debian's docker-registry (distribution 2.8) whose realm is scopegate under real
//! Spin, with `docker-credential-scopegate` handing docker fresh ID tokens. No
//! `docker login`, no registry password.
//!
//! The component is the OIDC test component of `tests/common/oidc.rs`: the shipped
//! `policies/people.toml` trusting the provider as issuer `sso`. The provider's ID tokens
//! live 30 s here, under the helper's 60 s refresh margin, so every `get` refreshes and a
//! change at the provider shows at the next docker command.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common_sso;

#[allow(dead_code)]
#[path = "../../../tests/common/oidc.rs"]
mod oidc;

use std::collections::BTreeMap;
use std::process::{Command, Output};

use common_sso::{shown, Machine};
use scopegate_harness::{Dockerd, Person, Registry, Scratch, Spin, SpinOptions};

const SERVICE: &str = "registry.test";
const ISSUER: &str = "sso-docker-test";
const CERT: &str = include_str!("../../../dev/signing-cert.pem");

fn variables() -> BTreeMap<String, String> {
    let variables = [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        ("signing_cert", CERT),
        ("services", SERVICE),
        ("issuer", ISSUER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    oidc::oidc_variables(variables)
}

struct World {
    spin: Spin,
    registry: Registry,
    dockerd: Dockerd,
    machine: Machine,
    /// Holds the registry's storage and config.
    _scratch: Scratch,
}

impl World {
    /// `docker ARGS` as the person runs it: their docker config (with `credHelpers`), the
    /// helper on PATH, the private dockerd.
    fn docker(&self, args: &[&str]) -> Output {
        let [(name, host), _] = self.dockerd.env();
        let mut command: Command = self.machine.command("docker");
        command.env(name, host).args(args);
        command.output().unwrap()
    }

    fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    /// `docker import` of a one-file image tagged `REGISTRY/name`.
    fn import(&self, name: &str) {
        let output = self
            .dockerd
            .import(&self.reference(name), &format!("{name}\n"));
        assert!(output.status.success(), "{}", shown(&output));
    }

    fn push(&self, name: &str) -> Output {
        self.import(name);
        self.docker(&["push", &self.reference(name)])
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- registry log\n{}", self.registry.log());
            eprintln!("--- scopegate log\n{}", self.spin.logs());
        }
    }
}

#[test]
fn a_person_pushes_with_docker_after_one_oidc_login() {
    let oidc = oidc::oidc();
    let idp = &oidc.idp;
    idp.set_id_token_lifetime(30);
    let spin = Spin::start(SpinOptions {
        manifest: oidc.manifest.clone(),
        variables: variables(),
        ..SpinOptions::default()
    });
    let scratch = Scratch::new("sso-docker");
    let registry = Registry::for_token_server(&scratch, &spin, SERVICE, ISSUER, CERT);
    let machine = Machine::for_registry(&registry.host());
    let world = World {
        dockerd: Dockerd::start(),
        spin,
        registry,
        machine,
        _scratch: scratch,
    };

    // One login at the provider, approved by the person.
    let mia = Person::new("mia").with_groups(&["dev", "platform"]);
    let login = world.machine.device_login(idp, &mia, &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    let config = std::fs::read_to_string(world.machine.docker_config()).unwrap();
    assert!(
        config.contains(&format!("\"{}\": \"scopegate\"", world.registry.host())),
        "{config}"
    );

    // Her own namespace and her group's, through the helper alone; nobody else's.
    let pushed = world.push("mia/app:1");
    assert!(pushed.status.success(), "{}", shown(&pushed));
    let pushed = world.push("platform/base:1");
    assert!(pushed.status.success(), "{}", shown(&pushed));
    let refused = world.push("ana/app:1");
    assert!(!refused.status.success(), "{}", shown(&refused));
    let removed = world.docker(&["rmi", &world.reference("mia/app:1")]);
    assert!(removed.status.success(), "{}", shown(&removed));
    let pulled = world.docker(&["pull", &world.reference("mia/app:1")]);
    assert!(pulled.status.success(), "{}", shown(&pulled));
    assert!(
        world.spin.logs().contains("\"account\":\"sso:id-mia\""),
        "scopegate names the person by issuer and sub"
    );
    // docker keeps nothing of its own: no credentials in its config.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(world.machine.docker_config()).unwrap())
            .unwrap();
    assert!(
        config["auths"]
            .as_object()
            .is_none_or(|auths| auths.is_empty()),
        "{config}"
    );

    // Out of the platform group at the provider: the next refreshed ID token says so.
    idp.set_groups(&mia.sub, &["dev"]);
    let refused = world.push("platform/base:2");
    assert!(!refused.status.success(), "{}", shown(&refused));
    let pushed = world.push("mia/app:2");
    assert!(pushed.status.success(), "{}", shown(&pushed));

    // Offboarded: the provider refuses the refresh token; docker shows the way back.
    assert!(idp.revoke_refresh_tokens(&mia.sub) >= 1);
    let removed = world.docker(&["rmi", &world.reference("mia/app:2")]);
    assert!(removed.status.success(), "{}", shown(&removed));
    let refused = world.docker(&["pull", &world.reference("mia/app:2")]);
    assert!(!refused.status.success(), "{}", shown(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("has ended") && stderr.contains("scopegate auth login --registry"),
        "{}",
        shown(&refused)
    );
}
