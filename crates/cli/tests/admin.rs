//! The admin commands against the built component under real Spin: what an
//! operator following the README does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine as _;
use scopegate_harness::{run_with_stdin, Spin, SpinOptions};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output};

const ADMIN_SECRET: &str = "cli-admin-secret";

fn start() -> Spin {
    let variables: BTreeMap<String, String> = [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        (
            "signing_cert",
            include_str!("../../../dev/signing-cert.pem"),
        ),
        ("services", "registry.test"),
        ("issuer", "cli-test"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "admin_token_sha256".to_string(),
        scopegate::secret::digest_hex(ADMIN_SECRET),
    )])
    .collect();
    Spin::start(SpinOptions {
        variables,
        ..SpinOptions::default()
    })
}

fn scopegate(host: &Spin, args: &[&str], stdin: Option<&str>) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .env("SCOPEGATE_URL", host.url(""))
            .env("SCOPEGATE_ADMIN_SECRET", ADMIN_SECRET),
        stdin,
    )
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// GET /token with Basic credentials; (status, access claim).
fn token(host: &Spin, user: &str, password: &str, scope: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(host.addr()).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    write!(
        stream,
        "GET /token?service=registry.test&scope={scope} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    if status != 200 {
        return (status, serde_json::Value::Null);
    }
    let start = raw.find("{\"").unwrap();
    let end = raw.rfind('}').unwrap();
    let body: serde_json::Value = serde_json::from_str(&raw[start..=end]).unwrap();
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    (status, claims["access"].clone())
}

#[test]
fn operator_creates_a_user_and_a_deploy_token_and_gets_tokens_with_both() {
    let host = start();
    ok(&scopegate(
        &host,
        &["user", "add", "alice", "--group", "team"],
        Some("alice-password\n"),
    ));
    let (status, access) = token(
        &host,
        "alice",
        "alice-password",
        "repository:team/app:pull,push",
    );
    assert_eq!(status, 200);
    assert_eq!(access[0]["actions"], serde_json::json!(["pull", "push"]));

    let created = ok(&scopegate(
        &host,
        &[
            "token",
            "create",
            "--kind",
            "deploy",
            "--owner",
            "alice",
            "--name",
            "prod",
            "--scope",
            "repository:team/**:pull",
            "--ttl",
            "30d",
            "--json",
        ],
        None,
    ));
    let created: serde_json::Value = serde_json::from_str(&created).unwrap();
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("sgd_"));
    let (status, access) = token(&host, "ci", secret, "repository:team/app:pull,push");
    assert_eq!(status, 200);
    assert_eq!(
        access[0]["actions"],
        serde_json::json!(["pull"]),
        "the token's limit narrows"
    );

    let listed = ok(&scopegate(&host, &["token", "list"], None));
    assert!(
        listed.contains("prod") && listed.contains("deploy"),
        "{listed}"
    );
    assert!(!listed.contains(secret), "lists never show secrets");

    let id = created["id"].as_str().unwrap();
    ok(&scopegate(&host, &["token", "revoke", &id[..10]], None));
    assert_eq!(
        token(&host, "ci", secret, "repository:team/app:pull").0,
        401
    );

    ok(&scopegate(&host, &["user", "disable", "alice"], None));
    assert_eq!(
        token(&host, "alice", "alice-password", "repository:team/app:pull").0,
        401
    );
    let users = ok(&scopegate(&host, &["user", "list"], None));
    assert!(
        users.contains("alice") && users.contains("disabled"),
        "{users}"
    );
    ok(&scopegate(&host, &["user", "enable", "alice"], None));
    assert_eq!(
        token(&host, "alice", "alice-password", "repository:team/app:pull").0,
        200
    );

    let explained = ok(&scopegate(
        &host,
        &[
            "explain",
            "--account",
            "alice",
            "--kind",
            "deploy",
            "--scope",
            "repository:team/app:delete,pull",
        ],
        None,
    ));
    assert!(
        explained.contains("granted: repository:team/app:pull"),
        "{explained}"
    );

    ok(&scopegate(&host, &["user", "delete", "alice"], None));
    assert_eq!(
        token(&host, "alice", "alice-password", "repository:team/app:pull").0,
        401
    );
}

#[test]
fn errors_reach_the_operator_with_a_non_zero_exit() {
    let host = start();
    let output = scopegate(
        &host,
        &["user", "add", "Not Valid"],
        Some("long-enough-password\n"),
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("400"));

    let wrong_secret = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["user", "list"])
        .env("SCOPEGATE_URL", host.url(""))
        .env("SCOPEGATE_ADMIN_SECRET", "wrong")
        .output()
        .unwrap();
    assert!(!wrong_secret.status.success());
    assert!(String::from_utf8_lossy(&wrong_secret.stderr).contains("401"));

    let bad_ttl = scopegate(
        &host,
        &[
            "token", "create", "--kind", "deploy", "--owner", "a", "--ttl", "5w",
        ],
        None,
    );
    assert!(!bad_ttl.status.success());
}

/// No server needed: what an operator sees before any request succeeds.
#[test]
fn a_missing_secret_is_a_usage_error_and_an_unreachable_server_is_named_once() {
    let closed = format!("http://{}", scopegate_harness::free_port());
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .env_remove("SCOPEGATE_URL")
            .env_remove("SCOPEGATE_ADMIN_SECRET")
            .output()
            .unwrap()
    };
    let missing = run(&["user", "list", "--server", &closed]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("the admin secret is required"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let unreachable = run(&["user", "list", "--server", &closed, "--admin-secret", "x"]);
    assert_eq!(unreachable.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unreachable.stderr);
    assert_eq!(stderr.matches(&closed).count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("GET {closed}/admin/users: Connection Failed")),
        "{stderr}"
    );
}

#[test]
fn keygen_writes_a_pair_the_component_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args([
            "keygen",
            "--out",
            out,
            "--issuer",
            "iss",
            "--service",
            "registry.example",
        ])
        .output()
        .unwrap();
    let stdout = ok(&output);
    assert!(
        stdout.contains("rootcertbundle:") && stdout.contains("service: registry.example"),
        "{stdout}"
    );
    let key = std::fs::read_to_string(dir.path().join("signing-key.pem")).unwrap();
    let cert = std::fs::read_to_string(dir.path().join("signing-cert.pem")).unwrap();
    let signer = scopegate::sign::Signer::from_pem(
        scopegate::sign::Algorithm::Es256,
        &key,
        &cert,
        scopegate::sign::Header::KidAndX5c,
    )
    .unwrap();
    assert!(signer.is_pair());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("signing-key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the private key is readable by its owner only"
        );
    }
    let again = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["keygen", "--out", out])
        .output()
        .unwrap();
    assert!(!again.status.success(), "never overwrites a key");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("signing-key.pem")).unwrap(),
        key
    );
}

#[test]
fn answers_read_as_text_and_mistakes_are_named() {
    let host = start();
    // A group the policy does not define is accepted, with a warning that
    // lists the groups it does.
    let added = scopegate(
        &host,
        &["user", "add", "ivy", "--group", "teem"],
        Some("ivy-password\n"),
    );
    ok(&added);
    let warning = String::from_utf8_lossy(&added.stderr);
    assert!(
        warning.contains("group teem is not defined by the policy")
            && warning.contains("team")
            && warning.contains("admins"),
        "{warning}"
    );

    // explain, unlock and delete print text, not JSON, without --json.
    let explained = ok(&scopegate(
        &host,
        &[
            "explain",
            "--account",
            "ivy",
            "--scope",
            "repository:ivy/tools:pull",
        ],
        None,
    ));
    assert!(
        explained.starts_with("granted: repository:ivy/tools:pull\n"),
        "{explained}"
    );
    assert!(
        explained.contains("matching rules:") && !explained.contains("\"explanation\""),
        "a text, not JSON: {explained}"
    );
    let unlocked = ok(&scopegate(&host, &["user", "unlock", "ivy"], None));
    assert_eq!(unlocked, "unlocked user ivy\n");
    let deleted = ok(&scopegate(&host, &["user", "delete", "ivy", "--yes"], None));
    assert_eq!(deleted, "deleted user ivy and 0 API tokens\n");
    let as_json = ok(&scopegate(&host, &["user", "--json", "list"], None));
    serde_json::from_str::<serde_json::Value>(&as_json).expect("--json prints JSON");

    // A wrong admin secret is called refused, a missing one missing.
    let refused = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["user", "list"])
        .env("SCOPEGATE_URL", host.url(""))
        .env("SCOPEGATE_ADMIN_SECRET", "not-the-secret")
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("refused the admin secret"), "{message}");
    let missing = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["user", "list"])
        .env("SCOPEGATE_URL", host.url(""))
        .env("SCOPEGATE_ADMIN_SECRET", "")
        .output()
        .unwrap();
    let message = String::from_utf8_lossy(&missing.stderr);
    assert!(message.contains("no admin secret given"), "{message}");
}
