//! The parts of the `scopegate` tool that read bytes from servers the user points it at,
//! kept in a library so that fuzz targets and property tests can reach them, and what
//! both binaries (`scopegate` and `docker-credential-scopegate`) share: the private files
//! and the single sign-on logins.
#![forbid(unsafe_code)]

pub mod challenge;
pub mod private_files;
pub mod sso;
pub mod transport_error;
