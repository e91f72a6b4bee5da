//! Client bytes as an ID token, and issuer bytes as a discovery document and a JWKS: never
//! a panic, never a workload from keys that did not verify it.
//!
//! The input is split at the first NUL: the token, then the JWKS the fake issuer serves
//! (also tried as a discovery document).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use scopegate::oidc::{self, jwks, Fetch, FetchError};
use scopegate::store::MemoryStore;
use scopegate_policy::Policy;

const ISSUER: &str = "http://127.0.0.1:9";

struct Serve<'a>(&'a [u8]);

impl Fetch for Serve<'_> {
    fn get(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        Ok(self.0.to_vec())
    }
}

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        let text = format!(
            "[[issuer]]\nname = \"fuzz\"\nurl = \"{ISSUER}\"\naudience = \"r\"\njwks_url = \"{ISSUER}/keys\"\n"
        );
        Policy::from_toml([("fuzz.toml", text.as_str())]).expect("the fuzz policy loads")
    })
}

fuzz_target!(|data: &[u8]| {
    let (token, document) = match data.iter().position(|b| *b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &b"{\"keys\":[]}"[..]),
    };
    let _ = jwks::parse_jwks(document);
    let _ = jwks::parse_discovery(document, ISSUER);
    let Ok(token) = std::str::from_utf8(token) else {
        return;
    };
    let _ = oidc::looks_like_jwt(token);
    let store = MemoryStore::new();
    let result = oidc::verify(token, policy(), &store, &Serve(document), 1_800_000_000);
    // A JWKS with no usable key can never vouch for anyone.
    if jwks::parse_jwks(document).map_or(true, |keys| keys.is_empty()) {
        assert!(result.is_err(), "verified without a key");
    }
});
