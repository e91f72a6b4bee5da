//! `wizer.initialize`: run once, at build time, by Wizer
//! (`crates/snapshot`), never by a request. It makes one ES256 signature
//! with a fixed, public scalar (1) over a fixed message, so p256 builds its
//! base-point table, a lazily initialised static; the snapshot Wizer takes
//! afterwards carries the table, and every instance starts with it.
//!
//! It reads no variable, no key and no randomness: nothing secret and no
//! random state is in the snapshot. Every instance draws its own
//! randomness (`jti`, request ids, nonces) at run time from the host and
//! reads its key from Spin variables per request.

#[export_name = "wizer.initialize"]
pub extern "C" fn initialize() {
    crate::sign::build_tables();
}
