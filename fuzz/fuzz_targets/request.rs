//! Whole requests through the core (`handle::handle`), as the Spin entry
//! hands them over, against a store holding a user, a deploy token and a
//! refresh token: no panic, and every answer is a well-formed response that
//! is never a 500.
//!
//! Input layout, fields separated by 0xff bytes: method selector, path,
//! query, Authorization value, Content-Type value, body.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use scopegate::handle::{handle, Env};
use scopegate::http::{HttpRequest, Method};
use scopegate::store::{MemoryStore, Store};

const KEY: &str = include_str!("../../dev/signing-key.pem");
const CERT: &str = include_str!("../../dev/signing-cert.pem");
const ADMIN_SECRET: &str = "fuzz-admin-secret";

fn variables() -> BTreeMap<String, String> {
    [
        ("signing_key", KEY.to_string()),
        ("signing_cert", CERT.to_string()),
        ("issuer", "fuzz".to_string()),
        ("services", "registry.fuzz".to_string()),
        (
            "admin_token_sha256",
            scopegate::secret::digest_hex(ADMIN_SECRET),
        ),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// A store with `alice` (password `alice-password`, whose stored hash is
/// precomputed so no input waits for hashing at start).
fn store() -> MemoryStore {
    let store = MemoryStore::new();
    let user = br#"{"v":1,"password":"$argon2id$v=19$m=19456,t=2,p=1$/6+2yxh6/8oaWedgruGj7w$qqD8mmsU19xARAHv7UmCvs13J3fpKd9E53XyoFPLQtg","groups":["team"],"id":"u1"}"#;
    let _ = store.set("user/alice", user);
    let token = format!(
        r#"{{"v":1,"kind":"deploy","owner":"alice","owner_id":"u1","name":"ci","limits":[],"expires_at":null,"created_at":0}}"#
    );
    let _ = store.set(
        &format!("token/{}", scopegate::secret::digest_hex("sgd_fuzz")),
        token.as_bytes(),
    );
    store
}

const PATHS: &[&str] = &[
    "/token",
    "/jwt/auth",
    "/auth",
    "/.well-known/jwks.json",
    "/healthz",
    "/admin/users",
    "/admin/tokens",
    "/admin/refresh-tokens/revoke",
    "/admin/explain",
];

fuzz_target!(|data: &[u8]| {
    let mut fields = data.split(|byte| *byte == 0xff);
    let mut next = || fields.next().unwrap_or_default();
    let selector = next();
    let method = match selector.first().copied().unwrap_or(0) % 7 {
        0 | 1 => Method::Get,
        2 | 3 => Method::Post,
        4 => Method::Patch,
        5 => Method::Delete,
        _ => Method::Put,
    };
    let path_bytes = next();
    let path = match selector.get(1) {
        Some(choice) if path_bytes.is_empty() => PATHS[usize::from(*choice) % PATHS.len()].to_string(),
        _ => String::from_utf8_lossy(path_bytes).into_owned(),
    };
    let query = String::from_utf8_lossy(next()).into_owned();
    let authorization = next().to_vec();
    let content_type = next().to_vec();
    let body = next().to_vec();
    let mut headers = Vec::new();
    if !authorization.is_empty() {
        headers.push(("authorization".to_string(), authorization));
    }
    if !content_type.is_empty() {
        headers.push(("content-type".to_string(), content_type));
    }
    let request = HttpRequest {
        method,
        path,
        query,
        headers,
        body,
    };
    let store = store();
    let variables = variables();
    let env = Env {
        store: &store,
        variables: &variables,
        fetch: &scopegate::oidc::NoNetwork,
        now: 1_800_000_000,
        request_id: "fuzz".to_string(),
        instance: &scopegate::handle::Instance::new(),
    };
    let handled = handle(&request, &env);
    assert!(handled.response.status != 500, "{:?}", handled.response);
    let _ = handled.log.to_line();
});
