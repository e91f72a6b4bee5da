//! `scopegate auth token` and `scopegate auth login` against Debian's docker-registry
//! (distribution 2.8) whose token realm is scopegate under real Spin, and against a
//! distribution that does htpasswd Basic auth only: what a CI script sees, exit codes
//! included.
//!
//! Every CLI run gets its own HOME, DOCKER_CONFIG and XDG_CACHE_HOME in a scratch
//! directory, so the user's real docker config and cache are never read or written.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use scopegate_harness::{http, run_with_stdin, Body, Registry, Scratch, Spin, SpinOptions};
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The local OIDC issuer and the component that trusts it, as the root
/// crate's tests use them.
#[allow(dead_code)]
#[path = "../../../tests/common/oidc.rs"]
mod oidc;

const ADMIN_SECRET: &str = "auth-cli-admin-secret";
const SERVICE: &str = "registry.test";
const ISSUER: &str = "auth-cli-test";
const DEV_CERT: &str = include_str!("../../../dev/signing-cert.pem");

/// scopegate under Spin, a registry whose realm it is, and a scratch directory.
struct World {
    spin: Spin,
    registry: Registry,
    scratch: Scratch,
}

/// The variables of the test servers.
fn variables() -> BTreeMap<String, String> {
    [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        ("signing_cert", DEV_CERT),
        ("services", SERVICE),
        ("issuer", ISSUER),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "admin_token_sha256".to_string(),
        scopegate::secret::digest_hex(ADMIN_SECRET),
    )])
    .collect()
}

impl World {
    fn start() -> World {
        World::start_with(SpinOptions {
            variables: variables(),
            ..SpinOptions::default()
        })
    }

    fn start_with(options: SpinOptions) -> World {
        let spin = Spin::start(options);
        let scratch = Scratch::new("auth-cli");
        let registry = Registry::for_token_server(&scratch, &spin, SERVICE, ISSUER, DEV_CERT);
        let world = World {
            spin,
            registry,
            scratch,
        };
        world.admin(
            &["user", "add", "alice", "--group", "team"],
            "alice-password\n",
        );
        world
    }

    /// An admin command through the CLI; its stdout.
    fn admin(&self, args: &[&str], stdin: &str) -> String {
        let output = run_with(
            args,
            Some(stdin),
            &[
                ("SCOPEGATE_URL", self.spin.url("")),
                ("SCOPEGATE_ADMIN_SECRET", ADMIN_SECRET.to_string()),
            ],
        );
        assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
        stdout(&output)
    }

    /// A directory standing in for one user's home: `home`, `docker` (DOCKER_CONFIG)
    /// and `cache` (XDG_CACHE_HOME) under `scratch/NAME`.
    fn user_dirs(&self, name: &str) -> UserDirs {
        UserDirs {
            home: self.scratch.dir(&format!("{name}/home")),
            docker: self.scratch.dir(&format!("{name}/docker")),
            cache: self.scratch.dir(&format!("{name}/cache")),
        }
    }

    fn registry_addr(&self) -> SocketAddr {
        self.registry.host().parse().unwrap()
    }

    /// `scopegate auth ...` as `user`, talking plain HTTP to the test registry. Its realm
    /// is scopegate on another loopback port, which needs `--allow-private-realm`.
    fn auth(&self, user: &UserDirs, args: &[&str], stdin: Option<&str>) -> Output {
        let host = self.registry.host();
        let mut all = vec![
            "auth",
            args[0],
            "--registry",
            &host,
            "--insecure",
            "--allow-private-realm",
        ];
        all.extend_from_slice(&args[1..]);
        run_with(&all, stdin, &user.env())
    }

    /// A registry API request with `token`.
    fn request(&self, method: &str, path: &str, token: &str, body: Body<'_>) -> http::Reply {
        self.request_with(method, path, token, &[], body)
    }

    fn request_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
    ) -> http::Reply {
        let bearer = format!("Bearer {token}");
        let mut all = vec![("Authorization", bearer.as_str())];
        all.extend_from_slice(headers);
        http::request(self.registry_addr(), method, path, &all, body).unwrap()
    }

    /// Pushes a one-layer image `repository:tag` whose content is `text`, through the
    /// registry API with `token`; the manifest digest.
    fn push(&self, token: &str, repository: &str, tag: &str, text: &str) -> String {
        let layer = format!("layer of {text}").into_bytes();
        let config = serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [digest(&layer)]},
        }))
        .unwrap();
        for blob in [&layer, &config] {
            let started = self.request(
                "POST",
                &format!("/v2/{repository}/blobs/uploads/"),
                token,
                Body::Sized(b""),
            );
            assert_eq!(started.status, 202, "{}", started.text());
            let location = started.header("Location").unwrap();
            let path = location
                .strip_prefix(&format!("http://{}", self.registry.host()))
                .unwrap_or(location);
            let separator = if path.contains('?') { '&' } else { '?' };
            let put = self.request_with(
                "PUT",
                &format!("{path}{separator}digest={}", digest(blob)),
                token,
                &[("Content-Type", "application/octet-stream")],
                Body::Sized(blob),
            );
            assert_eq!(put.status, 201, "{}", put.text());
        }
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": digest(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": digest(&layer), "size": layer.len()}],
        }))
        .unwrap();
        let put = self.request_with(
            "PUT",
            &format!("/v2/{repository}/manifests/{tag}"),
            token,
            &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
            Body::Sized(&manifest),
        );
        assert_eq!(put.status, 201, "{}", put.text());
        digest(&manifest)
    }

    /// The tags of `repository`, listed with `token`, sorted (the registry's order is
    /// its own).
    fn tags(&self, repository: &str, token: &str) -> Value {
        let reply = self.request(
            "GET",
            &format!("/v2/{repository}/tags/list"),
            token,
            Body::None,
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        let mut tags: Vec<String> =
            serde_json::from_value(reply.json()["tags"].clone()).unwrap_or_default();
        tags.sort();
        json!(tags)
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

struct UserDirs {
    home: PathBuf,
    docker: PathBuf,
    cache: PathBuf,
}

impl UserDirs {
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOME", self.home.display().to_string()),
            ("DOCKER_CONFIG", self.docker.display().to_string()),
            ("XDG_CACHE_HOME", self.cache.display().to_string()),
        ]
    }

    fn docker_config(&self) -> String {
        std::fs::read_to_string(self.docker.join("config.json")).unwrap_or_default()
    }

    fn cache_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.cache.join("scopegate/tokens")) {
            Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }
}

fn run_with(args: &[&str], stdin: Option<&str>, env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    command
        .args(args)
        .env_remove("DOCKER_CONFIG")
        .env_remove("XDG_CACHE_HOME");
    for (key, value) in env {
        command.env(key, value);
    }
    run_with_stdin(&mut command, stdin)
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The bare token an `auth token` run printed, checked to have exited `code`.
fn token_of(output: &Output, code: i32) -> String {
    assert_eq!(output.status.code(), Some(code), "{}", shown(output));
    let token = stdout(output);
    assert_eq!(token.split('.').count(), 3, "a bare JWT: {token}");
    token
}

/// The `access` claim of `token` as (type, name, actions) triples.
fn access(token: &str) -> Vec<(String, String, Vec<String>)> {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["access"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|entry| {
            let mut actions: Vec<String> = entry["actions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect();
            actions.sort();
            (
                entry["type"].as_str().unwrap().to_string(),
                entry["name"].as_str().unwrap().to_string(),
                actions,
            )
        })
        .collect()
}

fn entry(name: &str, actions: &[&str]) -> (String, String, Vec<String>) {
    let mut actions: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
    actions.sort();
    ("repository".to_string(), name.to_string(), actions)
}

fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

#[test]
fn tokens_with_a_password_an_api_token_an_identity_token_and_none() {
    let world = World::start();

    // A password: a bare token the registry accepts, with everything asked (exit 0).
    let alice = world.user_dirs("alice");
    let output = world.auth(
        &alice,
        &[
            "token",
            "--username",
            "alice",
            "--password-stdin",
            "--scope",
            "repository:team/app:pull,push",
        ],
        Some("alice-password\n"),
    );
    let push_token = token_of(&output, 0);
    assert_eq!(
        access(&push_token),
        vec![entry("team/app", &["pull", "push"])]
    );
    let pushed = world.push(&push_token, "team/app", "v1", "first");
    assert_eq!(world.tags("team/app", &push_token), json!(["v1"]));

    // The cache: the same request again reuses the token (mode 0600), --no-cache does not.
    let again = world.auth(
        &alice,
        &[
            "token",
            "-u",
            "alice",
            "--password-stdin",
            "--scope",
            "repository:team/app:push,pull",
            "--json",
        ],
        Some("alice-password"),
    );
    assert_eq!(again.status.code(), Some(0), "{}", shown(&again));
    let again: Value = serde_json::from_str(&stdout(&again)).unwrap();
    assert_eq!(again["cached"], true);
    assert_eq!(again["token"], push_token.as_str());
    let files = alice.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&files[0]).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cached_text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(!cached_text.contains("alice-password"));
    let fresh = world.auth(
        &alice,
        &[
            "token",
            "-u",
            "alice",
            "--password-stdin",
            "--scope",
            "repository:team/app:pull,push",
            "--no-cache",
        ],
        Some("alice-password"),
    );
    assert_ne!(token_of(&fresh, 0), push_token, "--no-cache fetches anew");

    // A wrong password is refused (exit 1), and no token is printed.
    let refused = world.auth(
        &alice,
        &[
            "token",
            "-u",
            "alice",
            "--password-stdin",
            "--scope",
            "repository:team/app:pull",
        ],
        Some("wrong-password"),
    );
    assert_eq!(refused.status.code(), Some(1), "{}", shown(&refused));
    assert_eq!(stdout(&refused), "");
    assert!(
        stderr(&refused).contains("refused the credentials (401)"),
        "{}",
        shown(&refused)
    );

    // An API token on stdin: a deploy token may pull but never delete, so asking for
    // pull and delete gives a token with pull only, exit 3, the missing part on stderr.
    let created = world.admin(
        &[
            "token",
            "create",
            "--kind",
            "deploy",
            "--owner",
            "alice",
            "--name",
            "ci",
            "--scope",
            "repository:team/**:pull,push",
            "--json",
        ],
        "",
    );
    let created: Value = serde_json::from_str(&created).unwrap();
    let deploy = created["secret"].as_str().unwrap();
    let ci = world.user_dirs("ci");
    let output = world.auth(
        &ci,
        &[
            "token",
            "--token-stdin",
            "--scope",
            "repository:team/app:pull,delete",
        ],
        Some(deploy),
    );
    let pull_only = token_of(&output, 3);
    assert_eq!(access(&pull_only), vec![entry("team/app", &["pull"])]);
    assert!(
        stderr(&output).contains("not granted: repository:team/app:delete"),
        "{}",
        shown(&output)
    );
    assert_eq!(world.tags("team/app", &pull_only), json!(["v1"]));
    // The registry agrees: that token cannot delete.
    let denied = world.request(
        "DELETE",
        &format!("/v2/team/app/manifests/{pushed}"),
        &pull_only,
        Body::None,
    );
    assert_eq!(denied.status, 401, "{}", denied.text());
    // --json shows the decoded access and what is missing; --header a header line.
    let output = world.auth(
        &ci,
        &[
            "token",
            "--token-stdin",
            "--scope",
            "repository:team/app:pull,delete",
            "--json",
        ],
        Some(deploy),
    );
    assert_eq!(output.status.code(), Some(3), "{}", shown(&output));
    let shown_json: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        shown_json["access"],
        json!([{"type": "repository", "name": "team/app", "actions": ["pull"]}])
    );
    assert_eq!(shown_json["missing"], json!(["repository:team/app:delete"]));
    assert_eq!(shown_json["service"], SERVICE);
    assert_eq!(shown_json["realm"], world.spin.url("/token"));
    assert!(shown_json["expires_at"].as_u64().unwrap() > 1_700_000_000);
    let output = world.auth(
        &ci,
        &[
            "token",
            "--token-stdin",
            "--scope",
            "repository:team/app:pull",
            "--header",
        ],
        Some(deploy),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert!(
        stdout(&output).starts_with("Authorization: Bearer ey"),
        "{}",
        shown(&output)
    );

    // auth login stores a refresh token, never the password, the way docker does.
    let docker_user = world.user_dirs("docker-user");
    let output = world.auth(
        &docker_user,
        &["login", "-u", "alice", "--password-stdin"],
        Some("alice-password\n"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(stdout(&output), "Login Succeeded");
    let config_text = docker_user.docker_config();
    let config: Value = serde_json::from_str(&config_text).unwrap();
    let stored = &config["auths"][world.registry.host()];
    assert_eq!(stored["auth"], STANDARD.encode("alice:"));
    assert!(
        stored["identitytoken"]
            .as_str()
            .unwrap()
            .starts_with("sgr_"),
        "{config}"
    );
    assert!(
        !config_text.contains("alice-password")
            && !config_text.contains(&STANDARD.encode("alice:alice-password")),
        "{config_text}"
    );
    // An identity token from the docker config: exchanged through the refresh grant.
    let output = world.auth(
        &docker_user,
        &["token", "--scope", "repository:team/app:pull,delete"],
        None,
    );
    let from_config = token_of(&output, 0);
    assert_eq!(
        access(&from_config),
        vec![entry("team/app", &["delete", "pull"])]
    );
    let refreshed = world
        .spin
        .logs()
        .lines()
        .any(|line| line.contains("\"client_id\":\"scopegate\"") && line.contains("POST"));
    assert!(
        refreshed,
        "POST grant_type=refresh_token:\n{}",
        world.spin.logs()
    );
    // skopeo reads the same entry and lists the tags with it.
    let skopeo = Command::new(scopegate_harness::require_program("skopeo", "skopeo"))
        .args(["list-tags", "--tls-verify=false", "--authfile"])
        .arg(docker_user.docker.join("config.json"))
        .arg(format!("docker://{}/team/app", world.registry.host()))
        .env("HOME", &docker_user.home)
        .output()
        .unwrap();
    assert!(skopeo.status.success(), "{}", shown(&skopeo));
    let listed: Value = serde_json::from_slice(&skopeo.stdout).unwrap();
    assert_eq!(listed["Tags"], json!(["v1"]));
    // After `scopegate refresh revoke`, the stored login no longer works, and the CLI says
    // what to do about it (not only the token server's `invalid credentials or grant`).
    world.admin(&["refresh", "revoke", "--account", "alice"], "");
    let output = world.auth(
        &docker_user,
        &["token", "--scope", "repository:team/app:pull"],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert!(
        stderr(&output).contains(&format!(
            "the login stored for {} in the docker config is no longer valid",
            world.registry.host()
        )) && stderr(&output).contains("run `scopegate auth login --registry"),
        "{}",
        shown(&output)
    );

    // Anonymous: anyone pulls public/**; team/** gets a token with nothing (exit 3).
    let nobody = world.user_dirs("nobody");
    let output = world.auth(
        &nobody,
        &["token", "--scope", "repository:public/hello:pull"],
        None,
    );
    let public = token_of(&output, 0);
    assert_eq!(access(&public), vec![entry("public/hello", &["pull"])]);
    let output = world.auth(
        &nobody,
        &["token", "--scope", "repository:team/app:pull"],
        None,
    );
    let nothing = token_of(&output, 3);
    assert!(access(&nothing).is_empty());
    assert!(
        stderr(&output).contains("not granted: repository:team/app:pull"),
        "{}",
        shown(&output)
    );

    // Usage errors exit 2.
    for (args, stdin) in [
        (vec!["token", "--scope", "repository:Team/App:pull"], None),
        (vec!["token", "--username", "alice"], None),
        (vec!["token", "--password-stdin"], Some("x")),
        (vec!["login"], None),
    ] {
        let output = world.auth(&nobody, &args, stdin);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            shown(&output)
        );
    }
}

#[test]
fn a_credential_helper_from_the_docker_config_is_used() {
    let world = World::start();
    let user = world.user_dirs("helper-user");
    // A docker-credential-* helper answering for this registry only, as
    // docker-credential-pass or -secretservice would.
    let bin = world.scratch.dir("helper-bin");
    let host = world.registry.host();
    let helper = bin.join("docker-credential-test");
    std::fs::write(
        &helper,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n\
             if [ \"$server\" = '{host}' ]; then\n\
             echo '{{\"ServerURL\":\"{host}\",\"Username\":\"alice\",\"Secret\":\"alice-password\"}}'\n\
             else echo 'credentials not found in native keychain'; exit 1; fi\n"
        ),
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        user.docker.join("config.json"),
        json!({"credHelpers": {host.clone(): "test"}}).to_string(),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut env = user.env();
    env.push(("PATH", path));
    let output = run_with(
        &[
            "auth",
            "token",
            "--registry",
            &host,
            "--insecure",
            "--allow-private-realm",
            "--scope",
            "repository:team/app:pull",
        ],
        None,
        &env,
    );
    let token = token_of(&output, 0);
    assert_eq!(access(&token), vec![entry("team/app", &["pull"])]);
}

#[test]
fn the_readme_clean_up_recipe_deletes_pr_tags_by_digest() {
    let world = World::start();
    scopegate_harness::require_program("curl", "curl");
    scopegate_harness::require_program("jq", "jq");
    let alice = world.user_dirs("recipe");
    let output = world.auth(
        &alice,
        &[
            "token",
            "-u",
            "alice",
            "--password-stdin",
            "--scope",
            "repository:team/app:pull,push",
        ],
        Some("alice-password"),
    );
    let push_token = token_of(&output, 0);
    world.push(&push_token, "team/app", "v1", "release");
    let preview_one = world.push(&push_token, "team/app", "pr-1", "preview one");
    world.push(&push_token, "team/app", "pr-2", "preview two");
    // `deploy` tagged from pr-1: the same manifest, which deleting pr-1 would delete too.
    let deploy_digest = world.push(&push_token, "team/app", "deploy", "preview one");
    assert_eq!(deploy_digest, preview_one);
    // pr-3 and pr-4 share a manifest that no kept tag points to: deleted once, both go.
    world.push(&push_token, "team/app", "pr-3", "preview three");
    world.push(&push_token, "team/app", "pr-4", "preview three");
    let output = world.auth(
        &alice,
        &["login", "-u", "alice", "--password-stdin"],
        Some("alice-password"),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));

    let script = readme_recipe()
        .replace(
            "REGISTRY=registry.example.com",
            &format!("REGISTRY={}", world.registry.host()),
        )
        .replace("https://", "http://")
        .replace(
            "scopegate auth token",
            "scopegate auth token --insecure --allow-private-realm",
        );
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_scopegate")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_script = |user: &UserDirs| {
        let mut command = Command::new("bash");
        command.arg("-c").arg(&script).env("PATH", &path);
        for (key, value) in user.env() {
            command.env(key, value);
        }
        command.output().unwrap()
    };
    let ran = run_script(&alice);
    assert!(ran.status.success(), "{script}\n{}", shown(&ran));
    let printed = stdout(&ran);
    assert!(
        printed.contains(&format!(
            "kept team/app:pr-1: a tag that stays points to {preview_one} too"
        )) && printed.contains("deleted team/app:pr-2 (sha256:")
            && printed.contains("deleted team/app:pr-3 (sha256:")
            && printed.contains("deleted team/app:pr-4 (sha256:"),
        "{printed}"
    );
    assert_eq!(
        world.tags("team/app", &push_token),
        json!(["deploy", "pr-1", "v1"])
    );

    // Without `delete` (a deploy token never deletes) the recipe stops at exit code 3.
    world.push(&push_token, "team/app", "pr-5", "preview five");
    let created = world.admin(
        &[
            "token", "create", "--kind", "deploy", "--owner", "alice", "--name", "recipe", "--json",
        ],
        "",
    );
    let created: Value = serde_json::from_str(&created).unwrap();
    let deploy = created["secret"].as_str().unwrap();
    let deploy_dirs = world.user_dirs("recipe-deploy");
    std::fs::write(
        deploy_dirs.docker.join("config.json"),
        json!({"auths": {world.registry.host(): {"auth": STANDARD.encode(format!("ci:{deploy}"))}}})
            .to_string(),
    )
    .unwrap();
    let ran = run_script(&deploy_dirs);
    assert_eq!(ran.status.code(), Some(3), "{}", shown(&ran));
    assert!(
        stderr(&ran).contains("not granted: repository:team/app:delete"),
        "{}",
        shown(&ran)
    );
    assert_eq!(
        world.tags("team/app", &push_token),
        json!(["deploy", "pr-1", "pr-5", "v1"])
    );
}

/// The shell block after the `scripts-and-ci-recipe` marker in the README.
fn readme_recipe() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    let after = readme
        .split_once("<!-- scripts-and-ci-recipe")
        .expect("the README marks its clean-up recipe")
        .1;
    let block = after.split_once("```sh\n").unwrap().1;
    block.split_once("```").unwrap().0.to_string()
}

#[test]
fn a_registry_doing_basic_auth_only_gets_a_clear_message() {
    let scratch = Scratch::new("auth-cli-basic");
    let dir = scratch.dir("registry");
    // The test never logs in, so the hash need not match any password; distribution only
    // needs a well-formed file to start with htpasswd auth.
    let htpasswd = scratch.file(
        "htpasswd",
        b"ci:$2y$05$abcdefghijklmnopqrstuOYQ4rdlF8ShkqTP4bTbi1ecbSxgB4Q5C\n",
    );
    let storage = dir.join("storage");
    let registry = Registry::start_with_config(&dir, |addr| {
        format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: {}\n  secret: basic-test\nauth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            json!(storage.display().to_string()),
            json!(addr.to_string()),
            json!(htpasswd.display().to_string()),
        )
    });
    let reply = registry.request("GET", "/v2/", &[]);
    assert_eq!(
        reply.header("WWW-Authenticate"),
        Some("Basic realm=\"basic-realm\"")
    );
    let home = scratch.dir("home");
    let output = run_with(
        &[
            "auth",
            "token",
            "--registry",
            &registry.host(),
            "--insecure",
            "--scope",
            "repository:team/app:pull",
        ],
        None,
        &[
            ("HOME", home.display().to_string()),
            ("DOCKER_CONFIG", home.display().to_string()),
            ("XDG_CACHE_HOME", home.display().to_string()),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert_eq!(stdout(&output), "");
    assert!(
        stderr(&output).contains("asks for HTTP Basic authentication and does no token auth"),
        "{}",
        shown(&output)
    );
}

/// A CI job's OIDC ID token through `--token-stdin` (as the README's "Scripts and CI"
/// says): a token for what the policy derives from its claims, exit 3 and `not granted`
/// for the rest, and the registry accepts a push with it.
#[test]
fn auth_token_with_an_oidc_id_token() {
    use jwt_simple::prelude::RSAKeyPairLike as _;

    let oidc = oidc::oidc();
    let world = World::start_with(SpinOptions {
        manifest: oidc.manifest.clone(),
        variables: oidc::oidc_variables(variables()),
        ..SpinOptions::default()
    });
    let id_token = oidc
        .github
        .sign(oidc::github_claims(oidc, "refs/heads/main"))
        .unwrap();
    let job = world.user_dirs("job");
    let output = world.auth(
        &job,
        &[
            "token",
            "--token-stdin",
            "--scope",
            "repository:acme/app/web:pull,push",
        ],
        Some(&id_token),
    );
    let token = token_of(&output, 0);
    assert_eq!(
        access(&token),
        vec![entry("acme/app/web", &["pull", "push"])]
    );
    world.push(&token, "acme/app/web", "v1", "pushed by a CI job");
    assert_eq!(world.tags("acme/app/web", &token), json!(["v1"]));

    let output = world.auth(
        &job,
        &[
            "token",
            "--token-stdin",
            "--scope",
            "repository:acme/other:push",
        ],
        Some(&id_token),
    );
    assert_eq!(output.status.code(), Some(3), "{}", shown(&output));
    assert!(
        stderr(&output).contains("not granted: repository:acme/other:push"),
        "{}",
        shown(&output)
    );
    assert!(
        !world.spin.logs().contains(&id_token),
        "the ID token is not logged"
    );
}
