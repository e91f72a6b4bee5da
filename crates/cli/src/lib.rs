//! The parts of the `scopegate` tool that read bytes from servers the user points it at,
//! kept in a library so that fuzz targets and property tests can reach them.
#![forbid(unsafe_code)]

pub mod challenge;
