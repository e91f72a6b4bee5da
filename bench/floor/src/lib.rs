//! The floor of scopegate's per-request cost, as a Spin component served by
//! the same test host: what any component pays to be instantiated and
//! answer, and what one ES256 signature costs in wasm once warm.
//!
//! Routes (every other path is a 404):
//! - `GET /empty`: 200 with an empty body; the instantiation floor.
//! - `GET /token-sized`: 200 with a JSON body the size of a token response,
//!   written before the response is handed over; the floor of any WASI 0.2
//!   token server.
//! - `GET /sign?n=N`: N signatures over JWT-sized messages with the primitive
//!   scopegate signs with (p256 0.13, RFC 6979, no precomputed tables).
//! - `GET /sign-jwt-simple?n=N`: N jwt-simple 0.15 `ES256KeyPair::sign`
//!   calls (p256 0.14, whose base-point tables are built on first use).
//! - `GET /verify-rs256?n=N`: N jwt-simple RS256 checks of a GitHub-shaped
//!   ID token from its JWK text, as scopegate checks a workload's ID token.
//! - `GET /scalar-mul?n=N`: the scalar multiplication inside a signature,
//!   N times each way: p256 0.13 (scopegate's), p256 0.14 without a table
//!   (variable base), and p256 0.14 with its base-point table.
//!
//! The signing routes answer JSON with the times measured inside wasm, in
//! nanoseconds: `key_load_ns`, `first_ns` (the first signature of the
//! instance, cold) and `warm_ns` (mean of the other N-1), and `verified`
//! (the last signature checked against the public key, outside the timing).

#[cfg(target_arch = "wasm32")]
mod floor;

// spin-sdk's #[http_component] generates the component's export glue,
// which contains `unsafe`; no hand-written unsafe code exists here.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod spin_entry;
