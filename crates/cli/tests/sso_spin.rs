//! Single sign-on under real Spin: after a device login at the harness's identity
//! provider, the ID token `docker-credential-scopegate get` hands out is what docker then
//! sends, the Basic password of `oidc`, and scopegate grants the person what its policy
//! says.
//!
//! The component is built for this test (the WASI 0.3 build, `spin-p3.toml`) into
//! `target/sso-test-p3`, with a policy folder (`SCOPEGATE_POLICY_DIR`) that trusts the
//! provider on its loopback port; the shipped policies never trust a loopback issuer.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common_sso;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use common_sso::{mia, Machine, CLIENT_ID};
use scopegate_harness::{http, repository_root, Body, Idp, Spin, SpinOptions};
use serde_json::{json, Value};

const SERVICE: &str = "registry.test";

/// Builds the component with a policy trusting `idp` as issuer `corp`, and writes a copy
/// of `spin-p3.toml` that runs it; that manifest.
fn component(idp: &Idp) -> PathBuf {
    let root = repository_root();
    let out = root.join("target/sso-test-p3");
    let policies = out.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    let policy = format!(
        r#"[[issuer]]
name = "corp"
url = "{issuer}"
audience = "{CLIENT_ID}"

[[allow]]
who = ["oidc:corp"]
when = {{ preferred_username = "mia" }}
what = ["repository:mia/**"]
actions = ["pull", "push"]
"#,
        issuer = idp.issuer()
    );
    std::fs::write(policies.join("corp.toml"), policy).unwrap();
    let output = Command::new("cargo")
        .args([
            "build",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "release-p3",
            "-p",
            "scopegate",
            "--no-default-features",
            "--features",
            "spin-p3",
        ])
        .arg("--target-dir")
        .arg(&out)
        .current_dir(&root)
        .env("SCOPEGATE_POLICY_DIR", &policies)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "building the test component failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shipped = "source = \"target/p3/wasm32-wasip2/release-p3/scopegate.wasm\"";
    let text = std::fs::read_to_string(root.join("spin-p3.toml")).unwrap();
    assert!(text.contains(shipped), "spin-p3.toml's source moved");
    let wasm = out.join("wasm32-wasip2/release-p3/scopegate.wasm");
    let mut text = text.replace(shipped, &format!("source = {:?}", wasm.to_str().unwrap()));
    if let Some(start) = text.find("[component.scopegate.build]") {
        text.truncate(start);
    }
    let manifest = out.join("spin-p3.toml");
    std::fs::write(&manifest, text).unwrap();
    manifest
}

fn variables() -> BTreeMap<String, String> {
    [
        ("signing_key", include_str!("../../../dev/signing-key.pem")),
        (
            "signing_cert",
            include_str!("../../../dev/signing-cert.pem"),
        ),
        ("services", SERVICE),
        ("issuer", "sso-test"),
        ("oidc_issuer_host", "http://127.0.0.1:*"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// `GET /token` for `scope` with Basic `oidc:SECRET`: the status and the decoded
/// `access` of the token.
fn token(spin: &Spin, secret: &str, scope: &str) -> (u16, Value) {
    let basic = format!("Basic {}", STANDARD.encode(format!("oidc:{secret}")));
    let reply = http::request(
        spin.addr(),
        "GET",
        &format!("/token?service={SERVICE}&scope={scope}"),
        &[("Authorization", &basic)],
        Body::None,
    )
    .unwrap();
    if reply.status != 200 {
        return (reply.status, Value::Null);
    }
    let token = reply.json()["token"].as_str().unwrap().to_string();
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["sub"], "corp:id-mia", "{claims}");
    assert_eq!(claims["auth_type"], "oidc", "{claims}");
    (reply.status, claims["access"].clone())
}

#[test]
fn the_helpers_id_token_gets_the_person_a_registry_token() {
    let idp = Idp::start(CLIENT_ID);
    let manifest = component(&idp);
    let spin = Spin::start(SpinOptions {
        manifest,
        variables: variables(),
        ..SpinOptions::default()
    });
    let machine = Machine::new();
    let login = machine.device_login(&idp, &mia(), &[]);
    assert_eq!(login.code, Some(0), "{}", login.stderr);
    let secret = machine.get()["Secret"].as_str().unwrap().to_string();

    let (status, access) = token(&spin, &secret, "repository:mia/app:pull,push");
    assert_eq!(status, 200);
    assert_eq!(
        access,
        json!([{"type": "repository", "name": "mia/app", "actions": ["pull", "push"]}])
    );
    let (status, access) = token(&spin, &secret, "repository:ana/app:pull");
    assert_eq!((status, access), (200, json!([])));
    // A token the provider did not sign is refused like a wrong password.
    let mut forged = secret.clone();
    forged.truncate(forged.len() - 4);
    forged.push_str("AAAA");
    assert_eq!(token(&spin, &forged, "repository:mia/app:pull").0, 401);
    assert!(!spin.logs().contains(&secret), "the ID token is not logged");
}
