//! Scope grammar, declarative policy files and their evaluation for scopegate.
//!
//! This crate decides, for a caller and the scopes it requests, exactly what a registry
//! token may carry. It has no I/O and no Spin dependency, builds for `wasm32-wasip2`, and
//! is shared by the component (which embeds a compiled policy), `build.rs` and the
//! `scopegate` command-line tool (which load TOML files with the `load` feature).
//!
//! - [`parse_scopes`] turns `scope` parameters into [`Scope`]s (or a [`ScopeError`] for a 400).
//! - [`Policy`] holds validated rules; [`Policy::evaluate`] returns a [`Grant`] and
//!   [`Policy::explain`] an [`Explanation`] of it.
//! - [`Policy::from_compiled`] decodes what `build.rs` embedded.
//! - [`Policy::issuer_for`] finds the trusted OIDC [`Issuer`] of an ID token's `iss`; a
//!   verified workload is evaluated as a [`Caller`] with a [`Workload`].
#![forbid(unsafe_code)]

mod action;
mod compiled;
mod evaluate;
mod explain;
mod grant;
mod index;
mod issuer;
mod limit;
mod name;
mod pattern;
mod person;
mod policy;
mod scope;
mod source;
mod subject;

#[cfg(feature = "load")]
mod cases;
#[cfg(feature = "load")]
mod load;

pub use compiled::{CompiledPolicy, DecodeError};
pub use explain::{
    ActionExplanation, CallerSummary, Explanation, MatchedRule, Outcome, ScopeExplanation,
};
pub use grant::{Grant, GrantedAccess, RuleRef};
pub use issuer::{check_key_url, check_url, Issuer};
pub use limit::{LimitError, ScopeLimit};
pub use name::MAX_NAME_LEN;
pub use policy::{Policy, RESERVED_CLAIMS};
pub use scope::{parse_scopes, Scope, ScopeError, ScopeErrorKind, MAX_SCOPES, MAX_SCOPE_VALUE_LEN};
pub use source::{Effect, Problem};
pub use subject::{Caller, CredentialKind, UnknownCredentialKind, Workload};

#[cfg(feature = "load")]
pub use cases::{PolicyTestCase, PolicyTests, TestReport, TestResult};
#[cfg(feature = "load")]
pub use load::LoadError;
