//! The policy stage: what an [`Authenticated`] caller gets of what it asked.
//!
//! The policy is compiled from `policies/*.toml` by `build.rs` into a compact
//! form embedded in the component and read in place: a request decodes only
//! the rules that could match the names it asks for, so a fresh instance
//! pays for the rules it uses, not for the size of the policy. It is never
//! parsed from TOML on a request.

use scopegate_policy::{CompiledPolicy, Grant, Scope};
use std::sync::OnceLock;

use crate::authenticate::Authenticated;
use crate::Error;

static COMPILED: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/policy.bin"));

/// The policy this build was compiled with (its layout checked, no rule
/// decoded yet).
pub fn policy() -> Result<&'static CompiledPolicy<'static>, Error> {
    static POLICY: OnceLock<Result<CompiledPolicy<'static>, String>> = OnceLock::new();
    POLICY
        .get_or_init(|| CompiledPolicy::new(COMPILED).map_err(|error| error.to_string()))
        .as_ref()
        .map_err(|error| Error::unavailable(format!("compiled policy: {error}")))
}

/// Exactly the intersection of `requested` with what the policy allows
/// `caller`, narrowed by the caller's credential limits.
pub fn grant(policy: &CompiledPolicy<'_>, caller: &Authenticated, requested: &[Scope]) -> Grant {
    policy.evaluate(&caller.caller(), requested, caller.limits())
}
