//! `scopegate store export` / `import` against the built component under
//! real Spin: a store moved from Spin's SQLite file to Redis keeps every
//! credential working, every revocation revoked, and a file this build
//! cannot read writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use scopegate_harness::{http, run_with_stdin, Body, Redis, Reply, Spin, SpinOptions};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

const ADMIN_SECRET: &str = "store-admin-secret";
const SERVICE: &str = "registry.test";

fn variables() -> BTreeMap<String, String> {
    [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        (
            "signing_cert",
            include_str!("../../../dev/signing-cert.pem"),
        ),
        ("services", SERVICE),
        ("issuer", "store-test"),
        ("lockout_threshold", "3"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "admin_token_sha256".to_string(),
        scopegate::secret::digest_hex(ADMIN_SECRET),
    )])
    .collect()
}

/// An instance on Spin's default store (SQLite), or on `redis`.
fn start(redis: Option<&Redis>) -> Spin {
    Spin::start(SpinOptions {
        variables: variables(),
        redis_url: redis.map(Redis::url),
        ..SpinOptions::default()
    })
}

fn scopegate(host: &Spin, args: &[&str]) -> Output {
    run_with_stdin(
        Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(args)
            .env("SCOPEGATE_URL", host.url(""))
            .env("SCOPEGATE_ADMIN_SECRET", ADMIN_SECRET),
        None,
    )
}

fn ok(output: &Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "exit {:?}\nstdout: {stdout}\nstderr: {stderr}",
        output.status.code()
    );
    (stdout, stderr)
}

fn admin(host: &Spin, method: &str, path: &str, body: Option<Value>) -> Reply {
    let bearer = format!("Bearer {ADMIN_SECRET}");
    let text = body.map(|body| body.to_string());
    let mut headers = vec![("Authorization", bearer.as_str())];
    if text.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let body = text
        .as_deref()
        .map_or(Body::None, |text| Body::Sized(text.as_bytes()));
    http::request(host.addr(), method, path, &headers, body).unwrap()
}

fn created(reply: Reply) -> Value {
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()
}

/// `GET /token` with Basic credentials, optionally asking for a refresh
/// token as `docker login` does.
fn login(host: &Spin, user: &str, secret: &str, scope: &str, offline: bool) -> Reply {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", SERVICE);
    query.append_pair("scope", scope);
    if offline {
        query.append_pair("offline_token", "true");
        query.append_pair("client_id", "docker");
    }
    let basic = format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")));
    let target = format!("/token?{}", query.finish());
    http::request(
        host.addr(),
        "GET",
        &target,
        &[("Authorization", &basic)],
        Body::None,
    )
    .unwrap()
}

/// docker's refresh-token POST.
fn refresh(host: &Spin, refresh_token: &str, scope: &str) -> Reply {
    let form = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("service", SERVICE),
            ("client_id", "docker"),
            ("scope", scope),
        ])
        .finish();
    http::request(
        host.addr(),
        "POST",
        "/token",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Body::Sized(form.as_bytes()),
    )
    .unwrap()
}

/// `sub` and `access` of the token in a 200 reply (GET's `token`, POST's
/// `access_token`), decoded, not verified: the other tests verify tokens.
fn granted(reply: &Reply) -> (String, Value) {
    assert_eq!(reply.status, 200, "{}", reply.text());
    let body = reply.json();
    let token = body["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    (
        claims["sub"].as_str().unwrap().to_string(),
        claims["access"].clone(),
    )
}

fn refresh_token_of(reply: &Reply) -> String {
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["refresh_token"].as_str().unwrap().to_string()
}

/// The lines of an export file as a set of JSON values.
fn lines(path: &Path) -> BTreeSet<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap().to_string())
        .collect()
}

const PUSH: &str = "repository:team/app:pull,push";
const PULL: &str = "repository:team/app:pull";

#[test]
fn a_store_moved_from_sqlite_to_redis_keeps_credentials_and_revocations() {
    let source = start(None);
    for (name, password, groups) in [
        ("alice", "alice-password", vec!["team"]),
        ("bob", "bob-password", vec![]),
        ("carol", "carol-password", vec!["team"]),
    ] {
        created(admin(
            &source,
            "POST",
            "/admin/users",
            Some(json!({"name": name, "password": password, "groups": groups})),
        ));
    }
    let deploy = created(admin(
        &source,
        "POST",
        "/admin/tokens",
        Some(json!({"kind": "deploy", "owner": "alice", "name": "ci",
                    "scopes": ["repository:team/**:pull"]})),
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let revoked_token = created(admin(
        &source,
        "POST",
        "/admin/tokens",
        Some(json!({"kind": "personal", "owner": "alice", "name": "laptop"})),
    ))["secret"]
        .as_str()
        .unwrap()
        .to_string();
    // Refresh tokens: two from alice's password (one to be revoked), one
    // from the deploy token.
    let kept_refresh = refresh_token_of(&login(&source, "alice", "alice-password", PUSH, true));
    let revoked_refresh = refresh_token_of(&login(&source, "alice", "alice-password", PUSH, true));
    let deploy_refresh = refresh_token_of(&login(&source, "ci", &deploy, PULL, true));
    let reply = admin(
        &source,
        "POST",
        "/admin/tokens/revoke",
        Some(json!({"token": revoked_token})),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = admin(
        &source,
        "POST",
        "/admin/refresh-tokens/revoke",
        Some(json!({"token": revoked_refresh})),
    );
    assert_eq!(reply.json()["revoked"], 1, "{}", reply.text());
    // carol is locked out on the source: lockouts stay with their store.
    for _ in 0..3 {
        assert_eq!(login(&source, "carol", "wrong", PULL, false).status, 401);
    }
    assert_eq!(
        login(&source, "carol", "carol-password", PULL, false).status,
        401
    );
    // What the source does before the move, the target must do after it.
    assert_eq!(login(&source, "x", &revoked_token, PULL, false).status, 401);
    assert_eq!(refresh(&source, &revoked_refresh, PULL).status, 400);
    assert_eq!(refresh(&source, &kept_refresh, PUSH).status, 200);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.jsonl");
    let (stdout, stderr) = ok(&scopegate(
        &source,
        &["store", "export", "-o", file.to_str().unwrap()],
    ));
    assert!(stdout.is_empty(), "the records go to the file: {stdout}");
    assert!(stderr.contains("exported"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is its owner's only");
    }
    let exported = lines(&file);
    let text = std::fs::read_to_string(&file).unwrap();
    let keys: Vec<String> = exported
        .iter()
        .map(|line| {
            let entry: Value = serde_json::from_str(line).unwrap();
            entry["key"].as_str().unwrap().to_string()
        })
        .collect();
    for wanted in ["user/alice", "user/bob", "user/carol", "refresh-of/alice"] {
        assert!(keys.iter().any(|key| key == wanted), "{wanted}: {keys:?}");
    }
    let count = |prefix: &str| keys.iter().filter(|key| key.starts_with(prefix)).count();
    assert_eq!(
        count("token/"),
        1,
        "the revoked API token is gone: {keys:?}"
    );
    assert_eq!(
        count("refresh/"),
        2,
        "the revoked refresh token is gone: {keys:?}"
    );
    for never in ["lockout/", "failures/", "verified/"] {
        assert_eq!(count(never), 0, "{never} is never exported: {keys:?}");
    }
    for secret in [
        deploy.as_str(),
        kept_refresh.as_str(),
        deploy_refresh.as_str(),
        "alice-password",
    ] {
        assert!(!text.contains(secret), "the file holds digests only");
    }

    let redis = Redis::start();
    let target = start(Some(&redis));
    assert_eq!(
        login(&target, "alice", "alice-password", PULL, false).status,
        401,
        "an empty store to begin with"
    );
    let (stdout, _) = ok(&scopegate(
        &target,
        &["store", "import", file.to_str().unwrap()],
    ));
    let total = exported.len();
    assert_eq!(
        stdout,
        format!("imported {total} records: {total} written, 0 replaced, 0 unchanged\n")
    );
    let (stdout, _) = ok(&scopegate(
        &target,
        &["store", "import", file.to_str().unwrap()],
    ));
    assert_eq!(
        stdout,
        format!("imported {total} records: 0 written, 0 replaced, {total} unchanged\n"),
        "a second import changes nothing"
    );
    let again = dir.path().join("from-redis.jsonl");
    ok(&scopegate(
        &target,
        &["store", "export", "-o", again.to_str().unwrap()],
    ));
    assert_eq!(lines(&again), exported, "Redis now holds the same records");

    // Passwords, API tokens and refresh tokens work on Redis.
    let (sub, access) = granted(&login(&target, "alice", "alice-password", PUSH, false));
    assert_eq!(sub, "alice");
    assert_eq!(access[0]["actions"], json!(["pull", "push"]));
    assert_eq!(
        login(
            &target,
            "bob",
            "bob-password",
            "repository:bob/x:pull",
            false
        )
        .status,
        200
    );
    let (sub, access) = granted(&login(&target, "ci", &deploy, PUSH, false));
    assert_eq!(sub, "alice");
    assert_eq!(
        access[0]["actions"],
        json!(["pull"]),
        "the deploy token's limit came along"
    );
    let (sub, access) = granted(&refresh(&target, &kept_refresh, PUSH));
    assert_eq!(sub, "alice");
    assert_eq!(access[0]["actions"], json!(["pull", "push"]));
    let (sub, _) = granted(&refresh(&target, &deploy_refresh, PULL));
    assert_eq!(sub, "alice");
    // Revoked ones stay revoked.
    assert_eq!(login(&target, "x", &revoked_token, PULL, false).status, 401);
    let reply = refresh(&target, &revoked_refresh, PULL);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert_eq!(reply.json()["error"], "invalid_grant");
    // The lockout stayed behind with the SQLite store.
    assert_eq!(
        login(&target, "carol", "carol-password", PULL, false).status,
        200
    );
    // Removed from the source after the move, nothing changes on Redis.
    drop(source);
    assert_eq!(refresh(&target, &kept_refresh, PULL).status, 200);
}

#[test]
fn a_record_of_an_unknown_version_refuses_the_file_and_writes_nothing() {
    let host = start(None);
    let password = scopegate::password::hash("dora-password").unwrap();
    let valid = json!({"key": "user/dora",
                       "record": {"v": 1, "password": password, "groups": ["team"]}});
    let future = json!({"key": "user/erin",
                        "record": {"v": 2, "password": password}});
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("backup.jsonl");
    std::fs::write(&file, format!("{valid}\n{future}\n")).unwrap();
    let users = |host: &Spin| -> Vec<String> {
        host.kv_keys()
            .into_iter()
            .filter(|key| key.starts_with("user/"))
            .collect()
    };

    let output = scopegate(&host, &["store", "import", file.to_str().unwrap()]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("nothing imported")
            && stderr.contains("backup.jsonl:2: user/erin: record version 2"),
        "{stderr}"
    );
    assert!(users(&host).is_empty(), "{:?}", users(&host));

    // The server refuses the same batch by itself, for any other client.
    let reply = admin(
        &host,
        "POST",
        "/admin/store/import",
        Some(json!({"records": [valid, future]})),
    );
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("record 2 (user/erin)"),
        "{}",
        reply.text()
    );
    assert!(users(&host).is_empty(), "{:?}", users(&host));
    assert_eq!(
        login(&host, "dora", "dora-password", PULL, false).status,
        401
    );

    // The valid line alone goes in: the refusal was the record's, not the file's.
    std::fs::write(&file, format!("{valid}\n")).unwrap();
    ok(&scopegate(
        &host,
        &["store", "import", file.to_str().unwrap()],
    ));
    assert_eq!(users(&host), ["user/dora"]);
    assert_eq!(
        login(&host, "dora", "dora-password", PULL, false).status,
        200
    );
}
