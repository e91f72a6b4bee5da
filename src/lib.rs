//! scopegate: the token server a Docker/OCI registry's `auth.token.realm`
//! points at.
//!
//! A request flows one way through one module per stage:
//! [`request`] (parse) -> [`authenticate`] -> [`grant`] (policy) -> [`sign`]
//! -> [`respond`], run in order by [`handle`]. The core is plain Rust with
//! the store ([`store::Store`]), the variables ([`config::Variables`]) and
//! the clock passed in, so it compiles and is tested natively; `entry/` holds
//! the thin adapter that the wasm32 build exports as a Spin component.

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
// One entry module per host binding, picked by feature: `spin-p2` (default,
// WASI 0.2, spin-sdk 5.2) or `spin-p3` (WASI 0.3, spin-sdk 6.0).
#[cfg(all(feature = "spin-p2", feature = "spin-p3"))]
compile_error!("build with exactly one of the features spin-p2 and spin-p3");

#[cfg(all(target_arch = "wasm32", feature = "spin-p2", not(feature = "spin-p3")))]
#[allow(unsafe_code)]
#[path = "entry/spin_p2.rs"]
mod spin_p2;

// spin-sdk 6.0's macros name `::spin_sdk`; the dependency is renamed so that
// both SDK versions can be declared in one manifest.
#[cfg(all(target_arch = "wasm32", feature = "spin-p3", not(feature = "spin-p2")))]
extern crate spin_sdk_p3 as spin_sdk;

#[cfg(all(target_arch = "wasm32", feature = "spin-p3", not(feature = "spin-p2")))]
#[allow(unsafe_code)]
#[path = "entry/spin_p3.rs"]
mod spin_p3;

#[cfg(all(target_arch = "wasm32", feature = "spin-p3", not(feature = "spin-p2")))]
#[path = "entry/p3_store.rs"]
mod p3_store;

// The build-time initialisation Wizer runs (the WASI 0.2 build for
// wasm32-wasip1 with the feature `snapshot`; see crates/snapshot).
#[cfg(all(target_arch = "wasm32", feature = "snapshot"))]
#[allow(unsafe_code)]
#[path = "entry/snapshot.rs"]
mod snapshot;

// The store, variables and instance state for both entries.
#[cfg(all(target_arch = "wasm32", any(feature = "spin-p2", feature = "spin-p3")))]
#[allow(unsafe_code)]
#[path = "entry/spin_host.rs"]
mod spin_host;

// Outbound GET for both entries (OIDC issuers' keys).
#[cfg(all(target_arch = "wasm32", any(feature = "spin-p2", feature = "spin-p3")))]
#[path = "entry/outbound.rs"]
mod outbound;

pub use error::Error;
