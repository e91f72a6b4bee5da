//! Moving from docker_auth: `scopegate import docker-auth` translates a worked
//! example ACL (every pattern the README's Migrating section promises) into a
//! policy whose generated tests pass, refuses what it cannot translate with entry
//! numbers, and imports the static users into a component built with the translated
//! policy under real Spin, where they log in with their old bcrypt passwords, carry
//! their labels as groups and get what docker_auth gave them, skopeo pushing through
//! distribution 2.8 included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod skopeo;

#[path = "../../../tests/common/component.rs"]
mod component;

use base64::Engine as _;
use scopegate_harness::{http, repository_root, Body, Registry, Scratch, Spin, SpinOptions};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const ADMIN_SECRET: &str = "docker-auth-admin-secret";
const SERVICE: &str = "registry.test";

/// The README's worked example. Each password is the user's name and
/// `-password` (Apache's `htpasswd -nbB`, cost 5).
const CONFIG: &str = r#"
server: {addr: ":5001"}
token: {issuer: "Acme auth server", expiration: 900}
users:
  "admin":
    password: "$2y$05$km4YKPGmIjt/BhC6mBTFseHHrZJt.3FOAlxUq.VsprgWarGD/GqTm"
  "test":
    password: "$2y$05$FDtCsJAPmY8mceOzZIav/OYvfUUJore06rHRorpqv46.s6I4iq75."
  "carol":
    password: "$2y$05$uEjz.nW.fhzS3sxa0ki3d.Q3XHF9PFj3VPBQzTkwpIFRBbn3ti2oe"
  "dave":
    password: "$2y$05$tC8rWS.sdVX0HHJio2maReELs.dCD6yBGTbWfegP0mLHAxouR.0WC"
    labels: {team: [web]}
  "": {}                                  # anonymous requests are allowed
acl:
  - match: {account: "admin"}
    actions: ["*"]
    comment: "admin does everything"
  - match: {account: "test", name: "test-*"}
    actions: ["*"]
    comment: "test owns test-*"
  - match: {account: "test"}
    actions: []
    comment: "and nothing else"
  - match: {account: "/.+/", name: "${account}/*"}
    actions: ["*"]
    comment: "everyone owns their namespace"
  - match: {labels: {team: "web"}, name: "${labels:team}/*"}
    actions: ["pull", "push"]
    comment: "team web pushes web/*"
  - match: {account: "/.+/"}
    actions: ["pull"]
    comment: "logged-in users pull everything"
  - match: {account: "", name: "hello-world"}
    actions: ["pull"]
    comment: "anonymous pulls hello-world"
"#;

/// The scopegate tool with no server settings from the environment.
fn scopegate(args: &[&str], server: Option<&Spin>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_scopegate"));
    command
        .args(args)
        .env_remove("SCOPEGATE_URL")
        .env_remove("SCOPEGATE_ADMIN_SECRET");
    if let Some(host) = server {
        command
            .env("SCOPEGATE_URL", host.url(""))
            .env("SCOPEGATE_ADMIN_SECRET", ADMIN_SECRET);
    }
    command.output().unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn translate(scratch: &Scratch, config: &str) -> (Output, std::path::PathBuf) {
    let file = scratch.file("auth_config.yml", config.as_bytes());
    let dir = scratch.dir("policies");
    let out = dir.join("imported.toml");
    let output = scopegate(
        &[
            "import",
            "docker-auth",
            file.to_str().unwrap(),
            "--policy-out",
            out.to_str().unwrap(),
        ],
        None,
    );
    (output, dir)
}

fn policy(command: &str, dir: &Path) -> Output {
    scopegate(&["policy", command, dir.to_str().unwrap()], None)
}

#[test]
fn the_worked_example_translates_and_passes_its_generated_tests() {
    let scratch = Scratch::new("docker-auth-translate");
    let (output, dir) = translate(&scratch, CONFIG);
    assert!(output.status.success(), "{}", text(&output));
    let policy_text = std::fs::read_to_string(dir.join("imported.toml")).unwrap();
    let tests_text = std::fs::read_to_string(dir.join("tests/imported.toml")).unwrap();

    let checked = policy("check", &dir);
    assert!(checked.status.success(), "{}", text(&checked));
    let tested = policy("test", &dir);
    assert!(tested.status.success(), "{}\n{policy_text}", text(&tested));
    let cases = tests_text.matches("[[case]]").count();
    assert!(cases > 50, "{cases} cases:\n{tests_text}");

    // The decisions users would notice are among the cases.
    for expected in [
        "name    = \"test: repository:test-x (entry 2 decides)\"\naccount = \"test\"\nscope   = \"repository:test-x:pull,push,delete\"\nexpect  = \"repository:test-x:pull,push,delete\"",
        "name    = \"test: repository:test-x/deep (entry 3 decides)\"\naccount = \"test\"\nscope   = \"repository:test-x/deep:pull,push,delete\"\nexpect  = []",
        "name    = \"test: repository:dave/app (entry 3 decides)\"\naccount = \"test\"\nscope   = \"repository:dave/app:pull,push,delete\"\nexpect  = []",
        "name    = \"carol: repository:carol/app/deep (entry 6 decides)\"\naccount = \"carol\"\nscope   = \"repository:carol/app/deep:pull,push,delete\"\nexpect  = \"repository:carol/app/deep:pull\"",
        "name    = \"carol: repository:dave/app (entry 6 decides)\"\naccount = \"carol\"\nscope   = \"repository:dave/app:pull,push,delete\"\nexpect  = \"repository:dave/app:pull\"",
        "name    = \"dave: repository:web/x (entry 5 decides)\"\naccount = \"dave\"\ngroups  = [\"web\"]\nscope   = \"repository:web/x:pull,push,delete\"\nexpect  = \"repository:web/x:pull,push\"",
        "name    = \"anonymous: repository:hello-world (entry 7 decides)\"\nscope   = \"repository:hello-world:pull,push,delete\"\nexpect  = \"repository:hello-world:pull\"",
        "name    = \"anonymous: repository:carol/app (no entry matches)\"\nscope   = \"repository:carol/app:pull,push,delete\"\nexpect  = []",
    ] {
        assert!(tests_text.contains(expected), "missing:\n{expected}\n\n{tests_text}");
    }

    // The tests can fail: a policy without the anonymous rule does.
    let without_anonymous: String = policy_text
        .split("\n[[")
        .filter(|rule| !rule.contains("\"anonymous\""))
        .collect::<Vec<_>>()
        .join("\n[[");
    assert_ne!(without_anonymous, policy_text);
    std::fs::write(dir.join("imported.toml"), without_anonymous).unwrap();
    let tested = policy("test", &dir);
    assert_eq!(tested.status.code(), Some(1), "{}", text(&tested));
    assert!(
        String::from_utf8_lossy(&tested.stdout).contains("anonymous: repository:hello-world")
            || String::from_utf8_lossy(&tested.stderr)
                .contains("anonymous: repository:hello-world"),
        "{}",
        text(&tested)
    );
}

#[test]
fn the_readme_shows_this_example() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    assert!(
        readme.contains(CONFIG.trim_start()),
        "README's docker_auth example drifted"
    );
}

#[test]
fn untranslatable_entries_are_refused_with_their_numbers_and_nothing_is_written() {
    let scratch = Scratch::new("docker-auth-refuse");
    let config = CONFIG.replace(
        "acl:\n",
        "acl:\n  - match: {ip: \"127.0.0.0/8\"}\n    actions: [\"*\"]\n    comment: \"localhost does everything\"\n  - match: {account: \"carol\", name: \"/team/\"}\n    actions: [\"push\"]\n",
    );
    let (output, dir) = translate(&scratch, &config);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nothing imported, nothing written"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "entry 1 (\"localhost does everything\"): matches the client's address (`ip`)"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("entry 2: for user carol, the name /team/: only ^NAME$"),
        "{stderr}"
    );
    assert!(!dir.join("imported.toml").exists());
    assert!(!dir.join("tests/imported.toml").exists());
}

/// The WASI 0.3 component built with the policies of `dir` into
/// `target/docker-auth-test`; the manifest that runs it.
fn component_with(dir: &Path) -> PathBuf {
    let out = repository_root().join("target/docker-auth-test");
    component::build(dir, &out, component::Build::P3)
}

#[test]
fn a_server_that_cannot_be_reached_leaves_no_policy_behind() {
    let scratch = Scratch::new("docker-auth-no-server");
    let file = scratch.file("auth_config.yml", CONFIG.as_bytes());
    let out = scratch.path().join("policies/imported.toml");
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let output = scopegate(
        &[
            "import",
            "docker-auth",
            file.to_str().unwrap(),
            "--policy-out",
            out.to_str().unwrap(),
            "--server",
            &url,
            "--admin-secret",
            ADMIN_SECRET,
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(!out.exists(), "{}", text(&output));
}

fn start(manifest: PathBuf) -> Spin {
    let variables: BTreeMap<String, String> = [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        (
            "signing_cert",
            include_str!("../../../dev/signing-cert.pem"),
        ),
        ("services", SERVICE),
        ("issuer", "docker-auth-test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "admin_token_sha256".to_string(),
        scopegate::secret::digest_hex(ADMIN_SECRET),
    )])
    .collect();
    Spin::start(SpinOptions {
        manifest,
        variables,
        ..SpinOptions::default()
    })
}

/// `GET /token` as `user:password` (anonymous for `""`) for `scope`: status and
/// granted access.
fn token(host: &Spin, credentials: &str, scope: &str) -> (u16, serde_json::Value) {
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    );
    let headers: &[(&str, &str)] = if credentials.is_empty() {
        &[]
    } else {
        &[("Authorization", &basic)]
    };
    let reply = http::request(
        host.addr(),
        "GET",
        &format!("/token?service={SERVICE}&scope={scope}"),
        headers,
        Body::None,
    )
    .unwrap();
    if reply.status != 200 {
        return (reply.status, serde_json::Value::Null);
    }
    let jwt = reply.json()["token"].as_str().unwrap().to_string();
    let claims = jwt.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(claims)
            .unwrap(),
    )
    .unwrap();
    (reply.status, claims["access"].clone())
}

fn stored(host: &Spin, name: &str) -> serde_json::Value {
    serde_json::from_slice(&host.kv_get(&format!("user/{name}")).unwrap()).unwrap()
}

fn access(name: &str, actions: &[&str]) -> serde_json::Value {
    serde_json::json!([{"type": "repository", "name": name, "actions": actions}])
}

#[test]
fn imported_users_log_in_with_their_old_passwords_and_get_the_translated_grants() {
    let scratch = Scratch::new("docker-auth-users");
    let (output, dir) = translate(&scratch, CONFIG);
    assert!(output.status.success(), "{}", text(&output));
    let host = start(component_with(&dir));

    // Users and policy at once: the policy is written again, the same.
    let before = std::fs::read_to_string(dir.join("imported.toml")).unwrap();
    let file = scratch.path().join("auth_config.yml");
    let out = dir.join("imported.toml");
    let url = host.url("");
    let output = scopegate(
        &[
            "import",
            "docker-auth",
            file.to_str().unwrap(),
            "--policy-out",
            out.to_str().unwrap(),
            "--server",
            &url,
        ],
        Some(&host),
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("created 4, updated 0, left alone 0"),
        "{}",
        text(&output)
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), before);
    assert_eq!(stored(&host, "dave")["groups"], serde_json::json!(["web"]));
    assert!(stored(&host, "dave")["password"]
        .as_str()
        .unwrap()
        .starts_with("$2y$05$"));

    // A wrong password is refused; the old one logs in and is rehashed.
    let (status, _) = token(&host, "dave:wrong", "repository:web/app:pull");
    assert_eq!(status, 401);
    let (status, granted) = token(
        &host,
        "dave:dave-password",
        "repository:web/app:pull,push,delete",
    );
    assert_eq!(status, 200);
    assert_eq!(
        granted,
        access("web/app", &["pull", "push"]),
        "team web pushes web/*"
    );
    assert!(stored(&host, "dave")["password"]
        .as_str()
        .unwrap()
        .starts_with("$argon2id$"));

    // The translated grants, from the component built with them.
    let cases: &[(&str, &str, serde_json::Value)] = &[
        (
            "test:test-password",
            "repository:test-app:push",
            access("test-app", &["push"]),
        ),
        // Denied by entry 3, although everyone owns their namespace (entry 4).
        (
            "test:test-password",
            "repository:test/app:pull",
            serde_json::json!([]),
        ),
        (
            "test:test-password",
            "repository:test-app/web:pull",
            serde_json::json!([]),
        ),
        (
            "carol:carol-password",
            "repository:carol/app:delete",
            access("carol/app", &["delete"]),
        ),
        (
            "carol:carol-password",
            "repository:carol/app/web:push",
            serde_json::json!([]),
        ),
        (
            "carol:carol-password",
            "repository:dave/app:pull,push",
            access("dave/app", &["pull"]),
        ),
        (
            "admin:admin-password",
            "repository:anything/at/all:delete",
            access("anything/at/all", &["delete"]),
        ),
        (
            "",
            "repository:hello-world:pull,push",
            access("hello-world", &["pull"]),
        ),
        ("", "repository:carol/app:pull", serde_json::json!([])),
    ];
    for (credentials, scope, expected) in cases {
        let (status, granted) = token(&host, credentials, scope);
        assert_eq!(status, 200, "{credentials} {scope}");
        assert_eq!(&granted, expected, "{credentials} {scope}");
    }

    // The same grants through distribution 2.8 with skopeo, old passwords and all.
    let registry = Registry::for_token_server(
        &scratch,
        &host,
        SERVICE,
        "docker-auth-test",
        include_str!("../../../dev/signing-cert.pem"),
    );
    for (reference, creds, pushes) in [
        ("web/app:v1", "dave:dave-password", true),
        ("test-app:v1", "test:test-password", true),
        ("test/app:v1", "test:test-password", false),
        ("web/app:v2", "carol:carol-password", false),
    ] {
        let output = skopeo::push(&scratch, &registry, reference, creds);
        assert_eq!(
            output.status.success(),
            pushes,
            "{reference} as {creds}: {}",
            text(&output)
        );
    }

    // A second import leaves everyone alone.
    let output = scopegate(
        &["import", "docker-auth", file.to_str().unwrap()],
        Some(&host),
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("created 0, updated 0, left alone 4"),
        "{}",
        text(&output)
    );
    assert!(stored(&host, "dave")["password"]
        .as_str()
        .unwrap()
        .starts_with("$argon2id$"));
    // ...unless told to replace their passwords and groups.
    let relabelled = CONFIG.replace("labels: {team: [web]}", "labels: {team: [web, ops]}");
    assert_ne!(relabelled, CONFIG);
    let file = scratch.file("relabelled.yml", relabelled.as_bytes());
    let output = scopegate(
        &["import", "docker-auth", file.to_str().unwrap(), "--update"],
        Some(&host),
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("created 0, updated 4, left alone 0"),
        "{}",
        text(&output)
    );
    assert_eq!(
        stored(&host, "dave")["groups"],
        serde_json::json!(["ops", "web"])
    );
    assert!(stored(&host, "dave")["password"]
        .as_str()
        .unwrap()
        .starts_with("$2y$05$"));
}

#[test]
fn a_file_with_an_unimportable_user_imports_nobody() {
    let host = start(repository_root().join("spin.toml"));
    let scratch = Scratch::new("docker-auth-bad-user");
    let config = CONFIG.replace(
        "  \"\": {}                                  # anonymous requests are allowed\n",
        "  \"\": {}\n  \"eve\": {}\n  \"frank\":\n    password: \"x\"\n    labels: {team: [\"Web Team\"]}\n",
    );
    assert_ne!(config, CONFIG);
    let file = scratch.file("auth_config.yml", config.as_bytes());
    let output = scopegate(
        &["import", "docker-auth", file.to_str().unwrap()],
        Some(&host),
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("user eve: no password"), "{stderr}");
    assert!(
        stderr.contains("user frank: label team: \"Web Team\" cannot be a group name"),
        "{stderr}"
    );
    assert!(host.kv_get("user/dave").is_none());
}
