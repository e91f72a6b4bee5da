//! Starts the real programs scopegate's integration and end-to-end tests
//! run against, each on a free 127.0.0.1 port with its state in a scratch
//! directory, stopped by PID and removed when dropped:
//!
//! - [`Spin`]: the built component under real `spin up` (found as `$SPIN`,
//!   `spin` on PATH, or `../shared/tools/spin`);
//! - [`Redis`]: `redis-server`, for instances sharing one store;
//! - [`Registry`]: Debian's `docker-registry` (distribution 2.8) with token
//!   auth;
//! - [`Dockerd`]: a private `dockerd` for the docker CLI;
//! - [`OidcIssuer`]: an OpenID issuer's discovery documents and JWKS;
//! - [`Idp`]: an OpenID Connect identity provider for people (device code,
//!   authorization code with PKCE, rotating refresh tokens).
//!
//! Each fails with a message naming what to install when its program is
//! missing; nothing is skipped silently.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod docker;
pub mod http;
pub mod idp;
pub mod oidc;
pub mod process;
pub mod redis;
pub mod registry;
pub mod spin;

pub use docker::{Dockerd, DOCKERD_FLAGS};
pub use http::{Body, Reply};
pub use idp::{Idp, Person};
pub use oidc::OidcIssuer;
pub use process::{free_port, require_program, run_with_stdin, Process, Scratch};
pub use redis::Redis;
pub use registry::{Registry, TokenAuth};
pub use spin::{repository_root, spin_binary, Spin, SpinOptions, StoreLock, StoreWatch};
