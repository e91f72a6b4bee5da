//! The outcome of an evaluation: what goes into the token.

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::source::Effect;

/// What a caller is granted for one request. Only [`crate::Policy::evaluate`] builds it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Grant {
    /// The JWT `access` claim: one entry per requested resource that was granted at least
    /// one action, in request order.
    pub access: Vec<GrantedAccess>,
    /// The `claims` of the allow rules that granted something, merged; where two rules set
    /// the same claim, the one written first (file name order, then file order) wins.
    pub claims: Map<String, Value>,
    /// Every rule that matched a requested resource, the caller and a requested action,
    /// allow and deny, in policy order: for logs.
    pub matched_rules: Vec<RuleRef>,
}

impl Grant {
    /// The granted scopes space-joined in scope grammar, for the OAuth2 `scope` reply.
    pub fn scope_string(&self) -> String {
        let mut text = String::new();
        for (i, access) in self.access.iter().enumerate() {
            if i > 0 {
                text.push(' ');
            }
            text.push_str(&access.to_string());
        }
        text
    }

    /// Whether nothing at all was granted.
    pub fn is_empty(&self) -> bool {
        self.access.is_empty()
    }
}

/// One entry of the JWT `access` claim, exactly as distribution reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GrantedAccess {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub resource_type: String,
    /// The resource name as requested.
    pub name: String,
    /// Granted actions in canonical order (`pull`, `push`, `delete`), or `["*"]` where `*`
    /// was requested and every action is granted. Never empty.
    pub actions: Vec<String>,
}

impl fmt::Display for GrantedAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.resource_type,
            self.name,
            self.actions.join(",")
        )
    }
}

/// A rule, named by where it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// Allow or deny.
    pub effect: Effect,
    /// The policy file's name.
    pub file: String,
    /// The line of its `[[allow]]` or `[[deny]]` header.
    pub line: u32,
}

impl fmt::Display for RuleRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}:{}", self.effect, self.file, self.line)
    }
}
