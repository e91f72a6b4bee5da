//! End to end with the real docker CLI: a private dockerd (Debian's
//! `docker.io`), Debian's docker-registry (distribution 2.8.2) with token
//! auth at scopegate under real Spin, and `docker login`, `push`, `pull`,
//! `logout` as a user types them.
//!
//! One test, one dockerd: the scenarios run in order against it, each
//! checking what docker and the registry then hold.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::Engine as _;
use common::*;
use jwt_simple::prelude::RSAKeyPairLike as _;
use scopegate_harness::{Dockerd, Registry, Scratch, DOCKERD_FLAGS};
use serde_json::json;
use std::process::{Command, Output};

/// What `docker ...` printed, for failure messages.
fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn succeeds(output: Output) -> String {
    assert!(output.status.success(), "{}", shown(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

fn fails(output: Output) -> String {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        shown(&output)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}

struct World {
    docker: Dockerd,
    registry: Registry,
    spin: Spin,
    scratch: Scratch,
}

impl World {
    fn docker(&self, args: &[&str]) -> Output {
        self.docker.docker(args, None)
    }

    fn login(&self, user: &str, secret: &str) -> String {
        succeeds(self.docker.docker(
            &[
                "login",
                "-u",
                user,
                "--password-stdin",
                &self.registry.host(),
            ],
            Some(secret),
        ))
    }

    /// `docker import` of a fresh image tagged `REGISTRY/name`; its id.
    fn import(&self, name: &str, text: &str) -> String {
        succeeds(self.docker.import(&self.reference(name), text))
    }

    fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.registry.host())
    }

    fn image_id(&self, name: &str) -> String {
        succeeds(self.docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            &self.reference(name),
        ]))
    }

    /// A registry API GET with the token `observer` (groups team and
    /// admins) gets for `scope`.
    fn observe(&self, scope: &str, path: &str) -> Reply {
        let reply = get(
            &self.spin,
            &token_path(&[scope]),
            Some(("observer", "observer-password")),
        );
        let token = reply.json()["token"].as_str().unwrap().to_string();
        let bearer = format!("Bearer {token}");
        self.registry
            .request("GET", path, &[("Authorization", &bearer)])
    }

    /// The repositories the registry's catalog lists.
    fn catalog(&self) -> serde_json::Value {
        let reply = self.observe("registry:catalog:*", "/v2/_catalog");
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["repositories"].clone()
    }

    /// The tags the registry lists for `name` (in team/** or public/**).
    fn tags(&self, name: &str) -> serde_json::Value {
        let reply = self.observe(
            &format!("repository:{name}:pull"),
            &format!("/v2/{name}/tags/list"),
        );
        if reply.status == 404 {
            return json!([]);
        }
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()["tags"].clone()
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- dockerd log (tail)\n{}", tail(&self.docker.log()));
            eprintln!("--- registry log (tail)\n{}", tail(&self.registry.log()));
            eprintln!("--- scopegate log\n{}", self.spin.logs());
        }
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

/// A registry with token auth at `spin`, a private dockerd, and scratch.
fn world(spin: Spin) -> World {
    let scratch = Scratch::new("docker-e2e");
    let registry = Registry::for_token_server(&scratch, &spin, SERVICE, ISSUER, DEV_CERT);
    let docker = Dockerd::start();
    World {
        docker,
        registry,
        spin,
        scratch,
    }
}

#[test]
fn docker_login_push_pull_logout_and_deploy_tokens() {
    let spin = start(variables(), registry_users());
    let world = world(spin);
    let host = world.registry.host();

    // docker login with a password keeps a refresh token, never the password.
    world.login("alice", "alice-password");
    let config: serde_json::Value = serde_json::from_str(&world.docker.config_json()).unwrap();
    let entry = &config["auths"][&host];
    let identity = entry["identitytoken"].as_str().unwrap_or_default();
    assert!(
        identity.starts_with("sgr_"),
        "identitytoken stored: {config}"
    );
    let raw_config = world.docker.config_json();
    let encoded = base64::engine::general_purpose::STANDARD.encode("alice:alice-password");
    assert!(
        !raw_config.contains("alice-password") && !raw_config.contains(&encoded),
        "the password is not in the docker config: {raw_config}"
    );

    // push, rmi, pull: the same image id comes back.
    let pushed_id = world.import("team/app:v1", "pushed by alice\n");
    succeeds(world.docker(&["push", &world.reference("team/app:v1")]));
    assert_eq!(world.tags("team/app"), json!(["v1"]));
    succeeds(world.docker(&["rmi", &world.reference("team/app:v1")]));
    succeeds(world.docker(&["pull", &world.reference("team/app:v1")]));
    assert_eq!(world.image_id("team/app:v1"), pushed_id);

    // A push the policy refuses (only maintainers publish public/**) fails
    // with docker's denied message, and nothing lands.
    world.import("public/hello:v1", "not alice's to publish\n");
    let refused = fails(world.docker(&["push", &world.reference("public/hello:v1")]));
    assert!(
        refused.contains("denied: requested access to the resource is denied"),
        "{refused}"
    );
    assert_eq!(world.tags("public/hello"), json!([]));

    // A maintainer publishes it; after logout, an anonymous pull works.
    world.login("mia", "mia-password");
    let public_id = world.image_id("public/hello:v1");
    succeeds(world.docker(&["push", &world.reference("public/hello:v1")]));
    succeeds(world.docker(&["logout", &host]));
    assert!(
        !world.docker.config_json().contains("sgr_"),
        "logout forgets the refresh token"
    );
    succeeds(world.docker(&["rmi", &world.reference("public/hello:v1")]));
    succeeds(world.docker(&["pull", &world.reference("public/hello:v1")]));
    assert_eq!(world.image_id("public/hello:v1"), public_id);

    // A deploy token as the password pushes where its limits allow and is
    // refused elsewhere (its owner `ci` owns ci/**, but the token is
    // limited to team/**).
    let deploy = create_token(
        &world.spin,
        json!({"kind": "deploy", "owner": "ci", "name": "docker-e2e",
               "scopes": ["repository:team/**:pull,push"]}),
    );
    world.login("ci", &deploy);
    world.import("team/app:v2", "pushed by a deploy token\n");
    succeeds(world.docker(&["push", &world.reference("team/app:v2")]));
    assert_eq!(world.tags("team/app"), json!(["v1", "v2"]));
    world.import("ci/tool:v1", "outside the token's limits\n");
    let refused = fails(world.docker(&["push", &world.reference("ci/tool:v1")]));
    assert!(
        refused.contains("denied: requested access to the resource is denied"),
        "{refused}"
    );
    assert_eq!(
        world.catalog(),
        json!(["public/hello", "team/app"]),
        "nothing landed in ci/tool"
    );
}

/// A CI job logs in with its OIDC ID token (`docker login -u oidc
/// --password-stdin`, as the README's GitHub Actions snippet does), pushes
/// to its repository's path and pulls back the same image; a push outside
/// what the policy derives from its claims is denied.
#[test]
fn docker_login_with_an_oidc_id_token_pushes_and_pulls() {
    let oidc = common::oidc::oidc();
    let spin = Spin::start(SpinOptions {
        manifest: oidc.manifest.clone(),
        variables: common::oidc::oidc_variables(variables()),
        ..SpinOptions::default()
    });
    let world = world(spin);
    let id_token = oidc
        .github
        .sign(common::oidc::github_claims(oidc, "refs/heads/main"))
        .unwrap();
    world.login("oidc", &id_token);

    let pushed_id = world.import("acme/app/web:v1", "pushed by a CI job\n");
    succeeds(world.docker(&["push", &world.reference("acme/app/web:v1")]));
    succeeds(world.docker(&["rmi", &world.reference("acme/app/web:v1")]));
    succeeds(world.docker(&["pull", &world.reference("acme/app/web:v1")]));
    assert_eq!(world.image_id("acme/app/web:v1"), pushed_id);

    world.import("acme/other:v1", "not this job's repository\n");
    let refused = fails(world.docker(&["push", &world.reference("acme/other:v1")]));
    assert!(
        refused.contains("denied: requested access to the resource is denied"),
        "{refused}"
    );
    let logs = world.spin.logs();
    assert!(
        logs.contains(r#""auth_type":"oidc""#) && !logs.contains(&id_token),
        "{logs}"
    );
}

/// A user moved from an htpasswd file keeps their password: `docker login` with it
/// works against the bcrypt hash given to the admin API, and the record is argon2id
/// from then on; a wrong password is refused as for anyone.
#[test]
fn docker_login_with_a_migrated_bcrypt_password_pushes_and_rehashes() {
    let spin = start(variables(), registry_users());
    // `htpasswd -nbB frank frank-password` (cost 5), as `scopegate import htpasswd`
    // and `user add --password-hash` hand it over.
    let hash = "$2y$05$udrIOEoLnR9V7FDtMIUSH.lNdEmWEOJ35qaSdCfch8MS07Uj5T0Va";
    let created = admin(
        &spin,
        "POST",
        "/admin/users",
        Some(json!({"name": "frank", "password_hash": hash, "groups": ["team"]})),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let world = world(spin);
    let refused = fails(world.docker.docker(
        &[
            "login",
            "-u",
            "frank",
            "--password-stdin",
            &world.registry.host(),
        ],
        Some("wrong-password"),
    ));
    assert!(
        refused.contains("unauthorized") || refused.contains("401"),
        "{refused}"
    );
    world.login("frank", "frank-password");
    world.import("team/migrated:v1", "pushed by a migrated user\n");
    succeeds(world.docker(&["push", &world.reference("team/migrated:v1")]));
    let record: serde_json::Value =
        serde_json::from_slice(&world.spin.kv_get("user/frank").unwrap()).unwrap();
    assert!(
        record["password"]
            .as_str()
            .unwrap()
            .starts_with("$argon2id$"),
        "{record}"
    );
}

/// The shell block after `marker` in the README.
fn readme_block(marker: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find(marker)
        .unwrap_or_else(|| panic!("README has no {marker}"));
    let rest = &readme[start..];
    let body = &rest[rest.find("```sh\n").unwrap() + 6..];
    body[..body.find("```").unwrap()].to_string()
}

/// The README's "Trying it with docker and skopeo" as a reader follows it:
/// its dockerd command is the tests' own, and its image recipe runs as
/// written (only the registry's address is the test's) against the quick
/// start's scopegate and registry configuration.
#[test]
fn the_readme_docker_and_skopeo_steps_work_as_written() {
    let dockerd = readme_block("<!-- try-it-dockerd:");
    for flag in DOCKERD_FLAGS {
        assert!(dockerd.contains(flag), "README's dockerd lacks {flag}");
    }
    let spin = start(variables(), registry_users());
    create_user(&spin, "dev", "dev-password", &["team"]);
    let world = world(spin);
    let recipe =
        readme_block("<!-- try-it-recipe:").replace("127.0.0.1:5000", &world.registry.host());
    let dir = world.scratch.dir("try-it");
    let mut command = Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", &recipe])
        .current_dir(&dir)
        .envs(world.docker.env())
        .env("HOME", &dir);
    let output = scopegate_harness::run_with_stdin(&mut command, None);
    assert!(output.status.success(), "{}", shown(&output));
    assert_eq!(world.tags("team/app"), json!(["v1", "v2"]));
    assert!(
        dir.join("image/index.json").is_file(),
        "oci:./image:v1 exists"
    );
}
