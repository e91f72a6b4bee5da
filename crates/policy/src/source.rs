//! The policy as written, before validation: what the TOML loader produces, what the
//! compiled form stores, and what [`crate::Policy`] is built from. Every item keeps the file
//! and line it came from, so a problem found while building points at its source.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Where an item was written: an index into [`PolicySource::files`] and a 1-based line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Location {
    pub(crate) file: u32,
    pub(crate) line: u32,
}

/// A value with its location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) at: Location,
}

/// Whether a rule grants or takes away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// An `[[allow]]` rule.
    Allow,
    /// A `[[deny]]` rule; denies win over allows.
    Deny,
}

impl Effect {
    /// `"allow"` or `"deny"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "allow",
            Effect::Deny => "deny",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct GroupSource {
    pub(crate) name: Located<String>,
    pub(crate) members: Vec<Located<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RuleSource {
    pub(crate) effect: Effect,
    pub(crate) at: Location,
    pub(crate) who: Vec<Located<String>>,
    pub(crate) what: Vec<Located<String>>,
    pub(crate) actions: Vec<Located<String>>,
    pub(crate) description: Option<String>,
    /// A JSON object, as text.
    pub(crate) claims: Option<Located<String>>,
    /// `when`: (claim path, pattern) pairs; a nested table gives a path of several keys.
    pub(crate) when: Option<Located<Vec<ConditionSource>>>,
}

/// One `when` entry as written: the claim's path (one key, or nested keys) and its pattern.
pub(crate) type ConditionSource = (Vec<String>, String);

/// An `[[issuer]]` as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IssuerSource {
    pub(crate) at: Location,
    pub(crate) name: Located<String>,
    pub(crate) url: Located<String>,
    pub(crate) audiences: Located<Vec<String>>,
    pub(crate) jwks_url: Option<Located<String>>,
    pub(crate) max_age: Option<Located<i64>>,
    /// The claim that names a person (`{person}`), and the domain its value must be in.
    pub(crate) person: Option<Located<String>>,
    pub(crate) person_domain: Option<Located<String>>,
}

/// All policy files merged: files in name order, rules in file order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PolicySource {
    pub(crate) files: Vec<String>,
    pub(crate) groups: Vec<GroupSource>,
    pub(crate) rules: Vec<RuleSource>,
    pub(crate) issuers: Vec<IssuerSource>,
}

/// One thing wrong with a policy, at a file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, as the loader was given it (a path for [`crate::Policy::load_dir`]).
    pub file: String,
    /// 1-based line; 0 when the problem concerns the file or directory as a whole.
    pub line: u32,
    /// What is wrong and what to do about it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}
