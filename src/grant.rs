//! The policy stage: what an [`Authenticated`] caller gets of what it asked.
//!
//! The policy is compiled from `policies/*.toml` by `build.rs` into a compact
//! form embedded in the component; it is decoded once per instance, never
//! parsed from TOML on a request.

use scopegate_policy::{Grant, Policy, Scope};
use std::sync::OnceLock;

use crate::authenticate::Authenticated;
use crate::Error;

static COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/policy.bin"));

/// The policy this build was compiled with.
pub fn policy() -> Result<&'static Policy, Error> {
    static POLICY: OnceLock<Result<Policy, String>> = OnceLock::new();
    POLICY
        .get_or_init(|| Policy::from_compiled(COMPILED).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| Error::unavailable(format!("compiled policy: {error}")))
}

/// Exactly the intersection of `requested` with what the policy allows
/// `caller`, narrowed by the caller's credential limits.
pub fn grant(policy: &Policy, caller: &Authenticated, requested: &[Scope]) -> Grant {
    policy.evaluate(&caller.caller(), requested, caller.limits())
}
