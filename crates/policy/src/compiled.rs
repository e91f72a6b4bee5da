//! The compiled form build.rs embeds: a magic header and the merged policy source in
//! postcard. Decoding rebuilds the policy through [`Policy::build`], the same validation
//! the files went through, so a `Policy` from bytes is exactly as trustworthy as one from
//! files; it costs microseconds for a policy of a few dozen rules.

use std::fmt;

use crate::policy::Policy;
use crate::source::PolicySource;

/// Identifies the format and its version; bump the last byte on any layout change.
const MAGIC: &[u8; 8] = b"scopeg\x00\x02";

impl Policy {
    /// Decodes the compact form made by `Policy::to_compiled`.
    ///
    /// Errors mean the bytes are not a policy of this version (a build mix-up): the caller
    /// must fail closed.
    pub fn from_compiled(bytes: &[u8]) -> Result<Policy, DecodeError> {
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| DecodeError("not a compiled scopegate policy of this version".into()))?;
        let source: PolicySource = postcard::from_bytes(body)
            .map_err(|e| DecodeError(format!("malformed compiled policy: {e}")))?;
        Policy::build(source).map_err(|problems| {
            let first = problems
                .first()
                .map(ToString::to_string)
                .unwrap_or_default();
            DecodeError(format!("compiled policy does not validate: {first}"))
        })
    }

    /// The compact form for `Policy::from_compiled`.
    #[cfg(feature = "load")]
    pub fn to_compiled(&self) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        // Serialising plain strings, integers and vectors into a Vec cannot fail; if it
        // ever did, the empty body fails `from_compiled` (build.rs checks), never silently.
        bytes.extend(postcard::to_allocvec(&self.source).unwrap_or_default());
        bytes
    }
}

/// Bytes that are not a compiled policy of this version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}
