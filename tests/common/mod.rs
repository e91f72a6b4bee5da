//! Shared pieces of the integration tests: the built component under real
//! `spin up` (see `tests/harness`), the users and variables most tests start
//! with, request helpers over the harness's raw HTTP/1.1 client, and an
//! independent token verifier.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_simple::prelude::*;
pub use scopegate_harness::{Body, Reply, Spin, SpinOptions};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

pub mod oidc;
pub mod store_fault;

pub const SERVICE: &str = "registry.test";
pub const ISSUER: &str = "scopegate-test";
pub const DEV_KEY: &str = include_str!("../../dev/signing-key.pem");
pub const DEV_CERT: &str = include_str!("../../dev/signing-cert.pem");
pub const ADMIN_SECRET: &str = "test-admin-secret";

/// The variables every test server starts with.
pub fn variables() -> BTreeMap<String, String> {
    [
        ("signing_key", DEV_KEY),
        ("signing_cert", DEV_CERT),
        ("issuer", ISSUER),
        ("services", SERVICE),
        ("realm", "http://127.0.0.1/token"),
        ("token_ttl", "300"),
        ("lockout_threshold", "3"),
        ("lockout_seconds", "600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .chain([(
        "admin_token_sha256".to_string(),
        scopegate::secret::digest_hex(ADMIN_SECRET),
    )])
    .collect()
}

/// A user record as the store keeps it.
pub fn user_record(password: &str, groups: &[&str]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "v": 1,
        "password": scopegate::password::hash(password).unwrap(),
        "groups": groups,
    }))
    .unwrap()
}

/// Starts the built component under real `spin up` with `variables` and a
/// store seeded with `kv`.
pub fn start(variables: BTreeMap<String, String>, kv: BTreeMap<String, Vec<u8>>) -> Spin {
    Spin::start(SpinOptions {
        variables,
        kv,
        ..SpinOptions::default()
    })
}

/// The users most tests need: `alice` in group `team`, `bob` in no group,
/// `admin` in group `admins`.
pub fn seeded_users() -> BTreeMap<String, Vec<u8>> {
    [
        ("user/alice", user_record("alice-password", &["team"])),
        ("user/bob", user_record("bob-password", &[])),
        ("user/admin", user_record("admin-password", &["admins"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// [`seeded_users`] plus the end-to-end tests' own: `mia` (group
/// maintainers, publishes `public/**`), `observer` (groups team and admins,
/// only looks at what the registry holds) and `ci` (group team, the machine
/// account that owns deploy tokens; deploy tokens act for their owner,
/// narrowed by their limits).
pub fn registry_users() -> BTreeMap<String, Vec<u8>> {
    let mut kv = seeded_users();
    for (name, password, groups) in [
        ("mia", "mia-password", &["maintainers"][..]),
        ("observer", "observer-password", &["team", "admins"][..]),
        ("ci", "ci-password-never-used", &["team"][..]),
    ] {
        kv.insert(format!("user/{name}"), user_record(password, groups));
    }
    kv
}

/// Sends one request over a fresh connection and reads the whole reply.
///
/// Every secret the request carries or the reply hands out (Basic
/// passwords, bearer secrets, issued tokens and refresh tokens, created API
/// tokens) is registered with `host`, whose logs must never show one; and no
/// reply may show the admin secret or the signing key.
pub fn send(
    host: &Spin,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> Reply {
    host.forbid_in_logs(ADMIN_SECRET);
    for line in DEV_KEY.lines().filter(|line| !line.starts_with("-----")) {
        host.forbid_in_logs(line);
    }
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("authorization") {
            forbid_credentials(host, value);
        }
    }
    if let Body::Sized(bytes) | Body::Chunked(bytes) = &body {
        for (name, value) in form_urlencoded::parse(bytes) {
            if name.contains("password") || name.contains("token") {
                host.forbid_in_logs(&value);
            }
        }
    }
    let reply = scopegate_harness::http::request(host.addr(), method, target, headers, body)
        .unwrap_or_else(|error| panic!("{method} {target}: {error}"));
    let text = reply.text();
    assert!(
        !text.contains(ADMIN_SECRET) && !text.contains("PRIVATE KEY"),
        "a reply shows the admin secret or the key: {text}"
    );
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(&reply.body) {
        for name in ["token", "access_token", "refresh_token", "secret"] {
            if let Some(value) = fields.get(name).and_then(|value| value.as_str()) {
                host.forbid_in_logs(value);
            }
        }
    }
    reply
}

/// Registers the secret of an `Authorization` header value.
fn forbid_credentials(host: &Spin, value: &str) {
    host.forbid_in_logs(value);
    if let Some(encoded) = value.strip_prefix("Basic ") {
        if let Ok(decoded) = STANDARD.decode(encoded.trim()) {
            let decoded = String::from_utf8_lossy(&decoded).into_owned();
            if let Some((_, password)) = decoded.split_once(':') {
                host.forbid_in_logs(password);
            }
        }
    } else if let Some(bearer) = value.strip_prefix("Bearer ") {
        host.forbid_in_logs(bearer.trim());
    }
}

/// `GET target` with optional Basic credentials.
pub fn get(host: &Spin, target: &str, basic: Option<(&str, &str)>) -> Reply {
    let authorization = basic
        .map(|(user, password)| format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))));
    let headers: Vec<(&str, &str)> = authorization
        .iter()
        .map(|value| ("Authorization", value.as_str()))
        .collect();
    send(host, "GET", target, &headers, Body::None)
}

/// A request to the admin API with the test admin secret and an optional
/// JSON body.
pub fn admin(host: &Spin, method: &str, path: &str, body: Option<serde_json::Value>) -> Reply {
    let bearer = format!("Bearer {ADMIN_SECRET}");
    let text = body.map(|b| b.to_string());
    let mut headers = vec![("Authorization", bearer.as_str())];
    if text.is_some() {
        headers.push(("Content-Type", "application/json"));
    }
    let body = match &text {
        Some(text) => Body::Sized(text.as_bytes()),
        None => Body::None,
    };
    send(host, method, path, &headers, body)
}

/// Creates a user through the admin API, as an operator would.
pub fn create_user(host: &Spin, name: &str, password: &str, groups: &[&str]) {
    let reply = admin(
        host,
        "POST",
        "/admin/users",
        Some(serde_json::json!({"name": name, "password": password, "groups": groups})),
    );
    assert_eq!(reply.status, 201, "create user {name}: {}", reply.text());
}

/// Creates an API token through the admin API and returns its secret.
pub fn create_token(host: &Spin, spec: serde_json::Value) -> String {
    let reply = admin(host, "POST", "/admin/tokens", Some(spec));
    assert_eq!(reply.status, 201, "{}", reply.text());
    reply.json()["secret"].as_str().unwrap().to_string()
}

/// `POST target` with a form body.
pub fn post_form(host: &Spin, target: &str, form: &[(&str, &str)]) -> Reply {
    let body = form_body(form);
    send(
        host,
        "POST",
        target,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Body::Sized(body.as_bytes()),
    )
}

pub fn form_body(form: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish()
}

/// `/token?service=SERVICE&scope=..` for each scope.
pub fn token_path(scopes: &[&str]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", SERVICE);
    for scope in scopes {
        query.append_pair("scope", scope);
    }
    format!("/token?{}", query.finish())
}

/// Claims of a verified token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Access {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegistryClaims {
    pub access: Vec<Access>,
    pub auth_type: String,
}

/// Verifies `token` independently of the code that signed it: the header
/// must carry `alg` ES256, `typ` JWT, `x5c` with the development
/// certificate and a `kid` equal to the RFC 7638 thumbprint computed here;
/// the signature must verify (with jwt-simple) against the public key in
/// `x5c` and against the JWKS entry with that `kid`; and `iss`, `aud`
/// (a JSON string), `exp`, `nbf`, `iat`, `jti` must be right.
pub fn verify(host: &Spin, token: &str) -> (serde_json::Value, JWTClaims<RegistryClaims>) {
    let mut parts = token.split('.');
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");

    // x5c: exactly the development certificate, standard base64 DER.
    let x5c = header["x5c"].as_array().expect("x5c array");
    let cert_der = STANDARD.decode(x5c[0].as_str().unwrap()).unwrap();
    assert_eq!(
        cert_der,
        pem_der(DEV_CERT),
        "x5c[0] is the signing certificate"
    );
    let spki = spki_from_certificate(&cert_der);
    let key_from_cert = ES256PublicKey::from_der(&spki).unwrap();

    // kid: the RFC 7638 thumbprint, recomputed here from the JWKS x and y.
    let jwks = get(host, "/.well-known/jwks.json", None).json();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == header["kid"])
        .expect("the token's kid is in the JWKS")
        .clone();
    let canonical = format!(
        r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
        jwk["x"].as_str().unwrap(),
        jwk["y"].as_str().unwrap()
    );
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    assert_eq!(header["kid"], thumbprint.as_str());
    let mut point = vec![4u8];
    point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
    point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
    let key_from_jwks = ES256PublicKey::from_bytes(&point).unwrap();

    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&[ISSUER])),
        allowed_audiences: Some(HashSet::from_strings(&[SERVICE])),
        time_tolerance: Some(jwt_simple::prelude::Duration::from_secs(0)),
        ..Default::default()
    };
    let claims = key_from_cert
        .verify_token::<RegistryClaims>(token, Some(options.clone()))
        .expect("signature verifies against the x5c certificate");
    key_from_jwks
        .verify_token::<RegistryClaims>(token, Some(options))
        .expect("signature verifies against the JWKS key");

    // distribution 2.8 needs `aud` as a JSON string, and exp/nbf/iat numbers.
    assert!(
        payload["aud"].is_string(),
        "aud must be a string: {payload}"
    );
    let iat = payload["iat"].as_u64().unwrap();
    assert_eq!(payload["exp"].as_u64().unwrap(), iat + 300);
    assert!(payload["nbf"].as_u64().unwrap() <= iat);
    assert_eq!(
        payload["jti"].as_str().unwrap().len(),
        32,
        "jti is 128 bits of hex"
    );
    (payload, claims)
}

/// The DER of the first PEM block.
pub fn pem_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}

/// The SubjectPublicKeyInfo DER inside an X.509 certificate, read with
/// x509-cert (an implementation independent of the signer).
pub fn spki_from_certificate(der: &[u8]) -> Vec<u8> {
    use x509_cert::der::{Decode, Encode};
    let certificate = x509_cert::Certificate::from_der(der).unwrap();
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .unwrap()
}

/// The `access` claim as (type, name, sorted actions) triples.
pub fn access_of(claims: &JWTClaims<RegistryClaims>) -> Vec<(String, String, Vec<String>)> {
    let mut access: Vec<_> = claims
        .custom
        .access
        .iter()
        .map(|entry| {
            let mut actions = entry.actions.clone();
            actions.sort();
            (entry.resource_type.clone(), entry.name.clone(), actions)
        })
        .collect();
    access.sort();
    access
}

/// Shorthand for an expected access entry.
pub fn entry(resource_type: &str, name: &str, actions: &[&str]) -> (String, String, Vec<String>) {
    let mut actions: Vec<String> = actions.iter().map(|a| a.to_string()).collect();
    actions.sort();
    (resource_type.to_string(), name.to_string(), actions)
}

/// Everything in the default store.
pub fn store_contents(host: &Spin) -> BTreeMap<String, Vec<u8>> {
    host.kv_keys()
        .into_iter()
        .map(|key| {
            let value = host.kv_get(&key).unwrap_or_default();
            (key, value)
        })
        .collect()
}

/// Clients that start a body and stop sending it: each gets a 408 in its
/// route's error shape once the body deadline passes, while other requests
/// are served meanwhile, and nothing of theirs reaches the store. The
/// bodies carry valid credentials and a valid admin secret, so only the
/// deadline stands between them and a token or a new user. A body that
/// pauses and then arrives in full (well within the deadline) gets its token.
///
/// No timing is asserted: a server that waited for ever shows as a read
/// that times out after two minutes.
pub fn stalled_bodies_get_408_and_block_nothing(host: &Spin) {
    use std::io::{Read, Write};
    host.forbid_in_logs(ADMIN_SECRET);
    host.forbid_in_logs("alice-password");
    host.clear_logs();
    let form = "Content-Type: application/x-www-form-urlencoded";
    let admin = format!("Authorization: Bearer {ADMIN_SECRET}\r\nContent-Type: application/json");
    // (what is sent, the body's top-level key in the route's error shape)
    let stalled = [
        // A declared length within the limit, a few bytes of it sent.
        (
            format!(
                "POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{form}\r\n\
                 Content-Length: 5000\r\n\r\ngrant_type=password&username=alice&password=alice-password"
            ),
            "error",
        ),
        (
            format!(
                "POST /admin/users HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{admin}\r\n\
                 Content-Length: 5000\r\n\r\n{{\"name\":\"mallory\",\"password\":\"mallory-password\"}}"
            ),
            "errors",
        ),
        // A chunked body: one whole chunk, then nothing, not even its end.
        (
            format!(
                "POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{form}\r\n\
                 Transfer-Encoding: chunked\r\n\r\n13\r\ngrant_type=password\r\n"
            ),
            "error",
        ),
    ];
    let open = |request: &str| {
        let mut stream = std::net::TcpStream::connect(host.addr()).unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(120)))
            .unwrap();
        stream.write_all(request.as_bytes()).unwrap();
        stream
    };
    let answer = |stream: &mut std::net::TcpStream, request: &str| {
        let mut raw = Vec::new();
        // A reset after the whole reply (the server closes early) still counts.
        if let Err(error) = stream.read_to_end(&mut raw) {
            assert!(!raw.is_empty(), "{request}: no answer: {error}");
        }
        Reply::parse(&raw, false).unwrap()
    };
    let mut connections: Vec<_> = stalled
        .iter()
        .map(|(request, key)| {
            let first_line = request.lines().next().unwrap_or_default();
            (open(request), first_line, *key)
        })
        .collect();
    let late_body = form_body(&[
        ("grant_type", "password"),
        ("username", "alice"),
        ("password", "alice-password"),
        ("service", SERVICE),
        ("scope", "repository:team/app:pull"),
        ("client_id", "test"),
    ]);
    let (first_half, second_half) = late_body.split_at(late_body.len() / 2);
    let mut late = open(&format!(
        "POST /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{form}\r\n\
         Content-Length: {}\r\n\r\n{first_half}",
        late_body.len()
    ));

    // Served while the stalled requests wait for their bodies.
    assert_eq!(get(host, "/healthz", None).status, 200);
    let reply = get(host, &token_path(&["repository:public/hello:pull"]), None);
    assert_eq!(reply.status, 200, "{}", reply.text());

    late.write_all(second_half.as_bytes()).unwrap();
    let reply = answer(&mut late, "late POST /token");
    assert_eq!(reply.status, 200, "late POST /token: {}", reply.text());
    host.forbid_in_logs(reply.json()["access_token"].as_str().unwrap());
    // What the late login wrote (its `verified/` marker) is in the store
    // now; the stalled requests, still waiting, have written nothing yet
    // and must write nothing later.
    let before = store_contents(host);

    for (stream, request, key) in &mut connections {
        let reply = answer(stream, request);
        assert_eq!(reply.status, 408, "{request}: {}", reply.text());
        let body = reply.json();
        if *key == "error" {
            assert_eq!(body["error"], "invalid_request", "{request}: {body}");
            assert!(body["error_description"].is_string(), "{request}: {body}");
        } else {
            assert_eq!(
                body["errors"][0]["code"], "INVALID_REQUEST",
                "{request}: {body}"
            );
            assert!(
                body["errors"][0]["message"].is_string(),
                "{request}: {body}"
            );
        }
    }

    let timed_out = host
        .logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|line| line["outcome"] == "body_timeout" && line["status"] == 408)
        .count();
    assert_eq!(timed_out, stalled.len(), "{}", host.logs());
    assert_eq!(
        store_contents(host),
        before,
        "a stalled request changed the store"
    );
    assert_eq!(
        get(host, "/healthz", None).status,
        200,
        "healthy afterwards"
    );
}
