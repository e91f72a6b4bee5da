//! Signing under real Spin: every algorithm signs tokens that its JWKS and
//! its certificate verify (with jwt-simple, not the signer's code), the
//! header follows `send_x5c`, a rotation publishes a previous key of any
//! algorithm, and a key its certificate does not certify fails every route
//! that signs or publishes closed, exactly as `/healthz` reports it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common::*;
use jwt_simple::prelude::*;
use std::collections::BTreeMap;

const ED_KEY: &str = include_str!("keys/ed25519-key.pem");
const ED_CERT: &str = include_str!("keys/ed25519-cert.pem");
const RSA_KEY: &str = include_str!("keys/rsa-key.pem");
const RSA_CERT: &str = include_str!("keys/rsa-cert.pem");
const OTHER_KEY: &str = include_str!("keys/other-p256-key.pem");
const OTHER_PUBLIC: &str = include_str!("keys/other-p256-public.pem");

/// Variables for `alg` with `key` and `cert`; the key's lines may never
/// appear in a log.
fn signing(alg: &str, key: &str, cert: &str) -> BTreeMap<String, String> {
    let mut vars = variables();
    vars.insert("signing_alg".into(), alg.into());
    vars.insert("signing_key".into(), key.into());
    vars.insert("signing_cert".into(), cert.into());
    vars
}

fn forbid_key(host: &scopegate_harness::Spin, key: &str) {
    for line in key.lines().filter(|line| !line.starts_with("-----")) {
        host.forbid_in_logs(line);
    }
}

fn alice_token(host: &scopegate_harness::Spin) -> String {
    let reply = get(
        host,
        &token_path(&["repository:team/app:pull"]),
        Some(("alice", "alice-password")),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["token"].as_str().unwrap().to_string()
}

fn header(token: &str) -> serde_json::Value {
    serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap()
}

fn options() -> VerificationOptions {
    VerificationOptions {
        allowed_issuers: Some(HashSet::from_strings(&[ISSUER])),
        allowed_audiences: Some(HashSet::from_strings(&[SERVICE])),
        ..Default::default()
    }
}

/// Whether jwt-simple verifies `token` with the JWK `jwk` (its own `alg`).
fn verifies_with_jwk(token: &str, jwk: &serde_json::Value) -> bool {
    let text = jwk.to_string();
    let claims = match jwk["alg"].as_str().unwrap() {
        "ES256" => ES256PublicKey::from_jwk(&text)
            .unwrap()
            .verify_token::<RegistryClaims>(token, Some(options())),
        "EdDSA" => Ed25519PublicKey::from_jwk(&text)
            .unwrap()
            .verify_token::<RegistryClaims>(token, Some(options())),
        "RS256" => RS256PublicKey::from_jwk(&text)
            .unwrap()
            .verify_token::<RegistryClaims>(token, Some(options())),
        other => panic!("JWKS entry with alg {other}"),
    };
    claims.is_ok()
}

/// Whether jwt-simple verifies `token` with the key of the certificate in
/// its own `x5c`, which must be `cert`.
fn verifies_with_x5c(token: &str, cert: &str) -> bool {
    let header = header(token);
    let leaf = STANDARD
        .decode(header["x5c"][0].as_str().expect("x5c"))
        .unwrap();
    assert_eq!(leaf, pem_der(cert), "x5c[0] is the signing certificate");
    let spki = spki_from_certificate(&leaf);
    let claims = match header["alg"].as_str().unwrap() {
        "ES256" => ES256PublicKey::from_der(&spki)
            .unwrap()
            .verify_token::<RegistryClaims>(token, Some(options())),
        "EdDSA" => Ed25519PublicKey::from_der(&spki)
            .unwrap()
            .verify_token::<RegistryClaims>(token, Some(options())),
        "RS256" => RS256PublicKey::from_der(&spki)
            .unwrap()
            .verify_token::<RegistryClaims>(token, Some(options())),
        other => panic!("alg {other}"),
    };
    claims.is_ok()
}

#[test]
fn every_algorithm_signs_and_publishes_its_key() {
    for (alg, key, cert, kty) in [
        ("ES256", DEV_KEY, DEV_CERT, "EC"),
        ("EdDSA", ED_KEY, ED_CERT, "OKP"),
        ("RS256", RSA_KEY, RSA_CERT, "RSA"),
    ] {
        let host = start(signing(alg, key, cert), seeded_users());
        forbid_key(&host, key);
        assert_eq!(get(&host, "/healthz", None).status, 200, "{alg}");
        let token = alice_token(&host);
        let header = header(&token);
        assert_eq!(header["alg"], alg);
        let keys = get(&host, "/.well-known/jwks.json", None).json()["keys"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(keys.len(), 1, "{alg}");
        assert_eq!(keys[0]["kty"], kty);
        assert_eq!(keys[0]["alg"], alg);
        assert_eq!(keys[0]["kid"], header["kid"]);
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(keys[0].get(private).is_none(), "{alg}: {private} published");
        }
        assert!(verifies_with_jwk(&token, &keys[0]), "{alg}: by the JWKS");
        assert!(verifies_with_x5c(&token, cert), "{alg}: by x5c");
    }
}

#[test]
fn send_x5c_false_names_the_key_by_kid_only() {
    for (alg, key, cert) in [("ES256", DEV_KEY, DEV_CERT), ("EdDSA", ED_KEY, ED_CERT)] {
        let mut vars = signing(alg, key, cert);
        vars.insert("send_x5c".into(), "false".into());
        let host = start(vars, seeded_users());
        let token = alice_token(&host);
        let header = header(&token);
        let names: Vec<&String> = header.as_object().unwrap().keys().collect();
        assert_eq!(names, ["alg", "kid", "typ"], "{alg}: {header}");
        let jwk = get(&host, "/.well-known/jwks.json", None).json()["keys"][0].clone();
        assert_eq!(jwk["kid"], header["kid"]);
        assert!(verifies_with_jwk(&token, &jwk), "{alg}");
    }
}

#[test]
fn a_rotation_publishes_a_previous_key_of_another_algorithm() {
    const ED_PUBLIC: &str = include_str!("keys/ed25519-public.pem");
    const RSA_PUBLIC: &str = include_str!("keys/rsa-public.pem");
    const OTHER_CERT: &str = include_str!("keys/other-p256-cert.pem");
    // (before: alg, key, cert, public key; after: alg, key, cert, kty of each)
    let rotations = [
        (
            ("ES256", OTHER_KEY, OTHER_CERT, OTHER_PUBLIC),
            ("EdDSA", ED_KEY, ED_CERT),
            ["OKP", "EC"],
        ),
        (
            ("EdDSA", ED_KEY, ED_CERT, ED_PUBLIC),
            ("RS256", RSA_KEY, RSA_CERT),
            ["RSA", "OKP"],
        ),
        (
            ("RS256", RSA_KEY, RSA_CERT, RSA_PUBLIC),
            ("ES256", DEV_KEY, DEV_CERT),
            ["EC", "RSA"],
        ),
    ];
    for ((old_alg, old_key, old_cert, old_public), (alg, key, cert), ktys) in rotations {
        let old_host = start(signing(old_alg, old_key, old_cert), seeded_users());
        let old_token = alice_token(&old_host);
        drop(old_host);

        // After the switch, the old public key is still published.
        let mut vars = signing(alg, key, cert);
        vars.insert("previous_public_key".into(), old_public.into());
        let host = start(vars, seeded_users());
        let keys = get(&host, "/.well-known/jwks.json", None).json()["keys"]
            .as_array()
            .unwrap()
            .clone();
        let published: Vec<&str> = keys.iter().map(|k| k["kty"].as_str().unwrap()).collect();
        assert_eq!(published, ktys, "{old_alg} to {alg}");
        let previous = keys
            .iter()
            .find(|key| key["kid"] == header(&old_token)["kid"])
            .expect("the old token's kid is still published");
        assert!(verifies_with_jwk(&old_token, previous), "{old_alg} token");
        let new_token = alice_token(&host);
        assert_eq!(header(&new_token)["alg"], alg);
        assert!(verifies_with_jwk(&new_token, &keys[0]), "{alg} token");
        assert!(!verifies_with_jwk(&new_token, previous));
    }
}

/// Every route that signs or publishes the key answers 503 with a request
/// id and no token; `/healthz` says why; the log line has the reason.
fn fails_closed(host: &scopegate_harness::Spin) {
    let health = get(host, "/healthz", None);
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json()["signing_key"],
        "signing_cert does not certify signing_key"
    );
    let scope = ["repository:team/app:pull"];
    for path in ["/token", "/jwt/auth", "/auth"] {
        let target = token_path(&scope).replacen("/token", path, 1);
        for basic in [None, Some(("alice", "alice-password"))] {
            let reply = get(host, &target, basic);
            assert_eq!(reply.status, 503, "GET {path} {basic:?}: {}", reply.text());
            assert!(reply.text().contains("request id"), "{}", reply.text());
            assert!(reply.json().get("token").is_none());
        }
        let reply = post_form(
            host,
            path,
            &[
                ("grant_type", "password"),
                ("service", SERVICE),
                ("client_id", "test"),
                ("username", "alice"),
                ("password", "alice-password"),
                ("scope", scope[0]),
            ],
        );
        assert_eq!(reply.status, 503, "POST {path}: {}", reply.text());
        assert!(reply.json().get("access_token").is_none());
    }
    assert_eq!(get(host, "/.well-known/jwks.json", None).status, 503);
    assert!(host
        .logs()
        .contains("signing key: signing_cert does not certify signing_key"));
}

#[test]
fn a_certificate_that_does_not_certify_the_key_fails_every_route_closed() {
    // ES256: loading derives no public key, so the check is the request's.
    let host = start(signing("ES256", OTHER_KEY, DEV_CERT), seeded_users());
    forbid_key(&host, OTHER_KEY);
    fails_closed(&host);
    assert!(
        !host
            .kv_keys()
            .iter()
            .any(|key| key.starts_with("checked-pair/")),
        "a mismatched pair is never recorded as checked"
    );
    drop(host);

    // EdDSA and RS256 check while loading.
    for (alg, key, cert) in [("EdDSA", ED_KEY, DEV_CERT), ("RS256", RSA_KEY, ED_CERT)] {
        let host = start(signing(alg, key, cert), seeded_users());
        let health = get(&host, "/healthz", None);
        assert_eq!(health.status, 503, "{alg}");
        assert_eq!(get(&host, &token_path(&[]), None).status, 503, "{alg}");
        assert_eq!(get(&host, "/.well-known/jwks.json", None).status, 503);
    }

    // An EdDSA key with a certificate of another Ed25519 key.
    let other_ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n-----END PRIVATE KEY-----\n";
    let host = start(signing("EdDSA", other_ed, ED_CERT), seeded_users());
    fails_closed(&host);
}

#[test]
fn a_checked_pair_is_remembered_and_keeps_signing() {
    let host = start(variables(), seeded_users());
    alice_token(&host);
    let markers: Vec<String> = host
        .kv_keys()
        .into_iter()
        .filter(|key| key.starts_with("checked-pair/"))
        .collect();
    assert_eq!(markers.len(), 1, "{markers:?}");
    // The marker names a digest, never the key.
    assert_eq!(markers[0].len(), "checked-pair/".len() + 64);
    alice_token(&host);
    assert_eq!(get(&host, "/healthz", None).status, 200);
}
