//! scopegate: the token server a Docker/OCI registry's `auth.token.realm`
//! points at.
//!
//! A request flows one way through one module per stage:
//! [`request`] (parse) -> [`authenticate`] -> [`grant`] (policy) -> [`sign`]
//! -> [`respond`], run in order by [`handle`]. The core is plain Rust with
//! the store ([`store::Store`]), the variables ([`config::Variables`]) and
//! the clock passed in, so it compiles and is tested natively; `spin_entry`
//! is the thin adapter that the wasm32 build exports as a Spin component.

#![deny(unsafe_code)]

pub mod admin;
pub mod authenticate;
pub mod config;
pub mod error;
pub mod grant;
pub mod handle;
pub mod http;
pub mod log;
pub mod oidc;
pub mod password;
pub mod records;
pub mod refresh;
pub mod request;
pub mod respond;
pub mod secret;
pub mod sign;
pub mod store;

// spin-sdk's #[http_component] generates the component's export glue,
// which contains `unsafe`; no hand-written unsafe code exists anywhere.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod spin_entry;

pub use error::Error;
