//! The app as an OCI artifact, guarded by scopegate itself: the built
//! component is pushed with `spin registry push --insecure` into
//! distribution 2.8 whose token auth is a running scopegate, with the
//! credentials in a docker config file (`spin registry login` speaks HTTPS
//! only), with a password and with a deploy token; what `docker login`
//! stores against scopegate (an identity token) Spin 4.0.2 does not use; a
//! push outside the user's namespace is refused; and
//! `spin up --from REF --insecure` runs the pulled app, which serves tokens.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use common::*;
use scopegate_harness::{repository_root, spin_binary, Registry, Scratch};
use std::process::{Command, Output};

/// `spin ARGS` with the docker config in `docker_config` and a registry
/// cache of the test's own.
fn spin(args: &[&str], docker_config: &std::path::Path, cache: &std::path::Path) -> Output {
    Command::new(spin_binary())
        .args(args)
        .arg("--cache-dir")
        .arg(cache)
        .env("DOCKER_CONFIG", docker_config)
        .current_dir(repository_root())
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn the_app_is_pushed_through_scopegate_and_runs_from_the_registry() {
    // The token server the registry trusts (it builds the component too).
    let guard = start(variables(), seeded_users());
    let scratch = Scratch::new("oci-app");
    let registry = Registry::for_token_server(&scratch, &guard, SERVICE, ISSUER, DEV_CERT);
    let host = registry.host();
    let docker_config = scratch.dir("docker");
    let auth = STANDARD.encode("alice:alice-password");
    std::fs::write(
        docker_config.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{auth}"}}}}}}"#),
    )
    .unwrap();
    guard.forbid_in_logs("alice-password");
    let cache = scratch.dir("spin-cache");
    let manifest = repository_root().join("spin.toml");
    let manifest = manifest.to_str().unwrap();

    // alice owns alice/** (policies/personal.toml): her push goes through.
    let reference = format!("{host}/alice/scopegate:v1");
    let pushed = spin(
        &["registry", "push", "--insecure", "-f", manifest, &reference],
        &docker_config,
        &cache,
    );
    assert!(pushed.status.success(), "push: {}", text(&pushed));
    let logs = guard.logs();
    assert!(
        logs.contains("repository:alice/scopegate:pull,push")
            || logs.contains("repository:alice/scopegate:push,pull"),
        "scopegate granted the push:\n{logs}"
    );

    let alice = get(
        &guard,
        &token_path(&["repository:alice/scopegate:pull"]),
        Some(("alice", "alice-password")),
    );
    let bearer = format!("Bearer {}", alice.json()["token"].as_str().unwrap());
    let tags = registry.request(
        "GET",
        "/v2/alice/scopegate/tags/list",
        &[("Authorization", &bearer)],
    );
    assert_eq!(tags.status, 200, "{}", tags.text());
    assert_eq!(tags.json()["tags"], serde_json::json!(["v1"]));
    let tags_now = || {
        let reply = registry.request(
            "GET",
            "/v2/alice/scopegate/tags/list",
            &[("Authorization", &bearer)],
        );
        reply.json()["tags"].clone()
    };

    // What `docker login` stores against scopegate is an identity token (a
    // refresh token), not the password; Spin 4.0.2 does not use one and goes
    // anonymous, so the README says to put `auth` in the config for Spin.
    let login = get(
        &guard,
        &format!("/token?service={SERVICE}&client_id=docker&offline_token=true"),
        Some(("alice", "alice-password")),
    );
    let identity_token = login.json()["refresh_token"].as_str().unwrap().to_string();
    let docker_login_config = scratch.dir("docker-login");
    let user_only = STANDARD.encode("alice:");
    std::fs::write(
        docker_login_config.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{user_only}","identitytoken":"{identity_token}"}}}}}}"#),
    )
    .unwrap();
    let with_identity_token = spin(
        &[
            "registry",
            "push",
            "--insecure",
            "-f",
            manifest,
            &format!("{host}/alice/scopegate:v2"),
        ],
        &docker_login_config,
        &cache,
    );
    assert!(
        !with_identity_token.status.success()
            && String::from_utf8_lossy(&with_identity_token.stderr).contains("code: 401"),
        "an identity token: {}",
        text(&with_identity_token)
    );
    // A deploy token limited to the app's repository, as CI would push with.
    let deploy = create_token(
        &guard,
        serde_json::json!({"kind": "deploy", "owner": "alice", "name": "release",
                           "scopes": ["repository:alice/scopegate:pull,push"]}),
    );
    let ci_config = scratch.dir("docker-ci");
    let ci_auth = STANDARD.encode(format!("ci:{deploy}"));
    std::fs::write(
        ci_config.join("config.json"),
        format!(r#"{{"auths":{{"{host}":{{"auth":"{ci_auth}"}}}}}}"#),
    )
    .unwrap();
    let with_deploy_token = spin(
        &[
            "registry",
            "push",
            "--insecure",
            "-f",
            manifest,
            &format!("{host}/alice/scopegate:v2"),
        ],
        &ci_config,
        &cache,
    );
    assert!(
        with_deploy_token.status.success(),
        "deploy token: {}",
        text(&with_deploy_token)
    );
    assert_eq!(tags_now(), serde_json::json!(["v1", "v2"]));

    // bob's namespace is not hers: scopegate grants nothing, the registry refuses.
    let outside = format!("{host}/bob/scopegate:v1");
    let refused = spin(
        &["registry", "push", "--insecure", "-f", manifest, &outside],
        &docker_config,
        &cache,
    );
    assert!(
        !refused.status.success(),
        "push outside: {}",
        text(&refused)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("code: 401") && stderr.contains("bob/scopegate"),
        "the registry refused it: {}",
        text(&refused)
    );
    let tags = registry.request("GET", "/v2/bob/scopegate/tags/list", &[]);
    assert_eq!(tags.status, 401, "anonymous: the registry asks for a token");
    let bob = get(
        &guard,
        &token_path(&["repository:bob/scopegate:pull"]),
        Some(("bob", "bob-password")),
    );
    let bob_token = bob.json()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {bob_token}");
    let tags = registry.request(
        "GET",
        "/v2/bob/scopegate/tags/list",
        &[("Authorization", &bearer)],
    );
    assert_eq!(
        tags.status,
        404,
        "nothing reached bob/scopegate: {}",
        tags.text()
    );

    // The pulled app, run as a host runs it, serves tokens.
    let runtime_config = scratch.file(
        "runtime-config.toml",
        scopegate_harness::spin::runtime_config(&variables(), None).as_bytes(),
    );
    // alice/** is not anonymous: the pull needs alice's docker config too.
    // The harness starts `spin up` with this process's environment; this
    // file holds one test, so no other thread reads it meanwhile.
    std::env::set_var("DOCKER_CONFIG", &docker_config);
    let args: Vec<String> = [
        "up",
        "--from",
        &reference,
        "--insecure",
        "--cache-dir",
        cache.to_str().unwrap(),
        "--runtime-config-file",
        runtime_config.to_str().unwrap(),
    ]
    .iter()
    .map(|arg| arg.to_string())
    .collect();
    let pulled = Spin::start_command_line(&args, scratch.path());
    // Its store is its own (empty): a user created there logs in.
    create_user(&pulled, "dora", "dora-password", &["team"]);
    let reply = get(
        &pulled,
        &token_path(&["repository:team/app:pull,push"]),
        Some(("dora", "dora-password")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let (_, claims) = verify(&pulled, reply.json()["token"].as_str().unwrap());
    assert_eq!(
        access_of(&claims),
        [entry("repository", "team/app", &["pull", "push"])]
    );
}
