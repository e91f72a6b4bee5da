//! Arbitrary text as a policy file (and as a test-case file): never a panic; whatever loads
//! survives the compiled form and evaluates without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_policy::{parse_scopes, Caller, CredentialKind, Policy, PolicyTests, Workload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = PolicyTests::from_toml("tests.toml", text);
    let Ok(policy) = Policy::from_toml([("fuzz.toml", text)]) else {
        return;
    };
    let decoded = Policy::from_compiled(&policy.to_compiled()).expect("a loaded policy decodes");
    let scopes = parse_scopes(["repository:a/b:* repository:alice/x:pull registry:catalog:*"])
        .expect("fixed scopes parse");
    let groups = vec!["g".to_owned()];
    let claims = serde_json::json!({"repository": "a/b", "ref": "refs/heads/main", "sub": "x"});
    let claims = claims.as_object().expect("an object");
    let issuer = policy
        .issuers()
        .first()
        .map_or("github", |issuer| issuer.name());
    for caller in [
        Caller {
            account: Some("github:x"),
            groups: &[],
            kind: None,
            workload: Some(Workload { issuer, claims }),
        },
        Caller::ANONYMOUS,
        Caller {
            account: Some("alice"),
            groups: &groups,
            kind: Some(CredentialKind::Deploy),
            workload: None,
        },
    ] {
        let grant = policy.evaluate(&caller, &scopes, None);
        assert_eq!(grant, decoded.evaluate(&caller, &scopes, None));
        let _ = policy.explain(&caller, &scopes, None).to_string();
    }
    // Mutated compiled bytes must be refused or decoded, never panic.
    let mut bytes = policy.to_compiled();
    let position = data.len() % bytes.len().max(1);
    if let Some(byte) = bytes.get_mut(position) {
        *byte ^= 0x41;
    }
    let _ = Policy::from_compiled(&bytes);
});
