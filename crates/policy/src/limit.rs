//! Credential scope limits: `repository:platform/**:pull,push`, a pattern plus actions.
//!
//! Limits only narrow: with limits present, a requested scope keeps only the actions some
//! matching limit lists, and a scope no limit matches gets nothing.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::action::{ActionSet, ResourceType};
use crate::pattern::ResourcePattern;
use crate::scope::shorten;

/// Longest limit accepted, in bytes.
const MAX_LIMIT_LEN: usize = 1024;

/// One scope limit of a credential. Only [`ScopeLimit::parse`] builds it; `Display`
/// prints the canonical form, which parses back to an equal value; serde uses that string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeLimit {
    pattern: ResourcePattern,
    /// As written (`*` kept literal), for printing.
    declared: ActionSet,
    /// The concrete actions this limit leaves open.
    resolved: ActionSet,
}

impl ScopeLimit {
    /// Parses `type:name-pattern:action[,action...]` with the pattern syntax of policy
    /// files (`*`, `**`, `{account}`); actions must be ones the type knows.
    pub fn parse(text: &str) -> Result<ScopeLimit, LimitError> {
        let error = |reason: String| LimitError {
            shown_value: shorten(text),
            reason,
        };
        if text.len() > MAX_LIMIT_LEN {
            return Err(error(format!("longer than {MAX_LIMIT_LEN} bytes")));
        }
        let (pattern_text, action_list) = text
            .rsplit_once(':')
            .filter(|(pattern, _)| pattern.contains(':'))
            .ok_or_else(|| error("expected type:name-pattern:action[,action...]".into()))?;
        let pattern = ResourcePattern::parse(pattern_text).map_err(error)?;
        let resource_type = pattern.resource_type();
        let mut declared = ActionSet::EMPTY;
        for action in action_list.split(',') {
            match ActionSet::parse_one(action) {
                Some(known) if resource_type.accepts(known) => declared = declared.union(known),
                _ => {
                    return Err(error(format!(
                        "unknown action {:?} ({})",
                        shorten(action),
                        resource_type.action_help()
                    )))
                }
            }
        }
        Ok(ScopeLimit {
            resolved: resource_type.resolve(declared),
            pattern,
            declared,
        })
    }

    pub(crate) fn pattern(&self) -> &ResourcePattern {
        &self.pattern
    }

    pub(crate) fn resolved(&self) -> ActionSet {
        self.resolved
    }

    pub(crate) fn resource_type(&self) -> ResourceType {
        self.pattern.resource_type()
    }
}

impl fmt::Display for ScopeLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.pattern)?;
        for (i, action) in self.declared.names().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action)?;
        }
        Ok(())
    }
}

impl FromStr for ScopeLimit {
    type Err = LimitError;

    fn from_str(text: &str) -> Result<ScopeLimit, LimitError> {
        ScopeLimit::parse(text)
    }
}

impl Serialize for ScopeLimit {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ScopeLimit {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ScopeLimit, D::Error> {
        let text = String::deserialize(deserializer)?;
        ScopeLimit::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A scope limit that does not parse; `Display` quotes it (escaped, cut to 64 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitError {
    shown_value: String,
    reason: String,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid scope limit {:?}: {}",
            self.shown_value, self.reason
        )
    }
}

impl std::error::Error for LimitError {}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                "repository:platform/**:pull,push",
                Some("repository:platform/**:pull,push"),
            ),
            (
                "repository:platform/**:push,pull",
                Some("repository:platform/**:pull,push"),
            ),
            (
                "repository:localhost:5000/**:pull",
                Some("repository:localhost:5000/**:pull"),
            ),
            ("repository:{account}/*:*", Some("repository:{account}/*:*")),
            ("registry:catalog:*", Some("registry:catalog:*")),
            ("registry:catalog:pull", None),
            ("repository:platform/**:", None),
            ("repository:platform/**:pull,", None),
            ("repository:platform/**:fly", None),
            ("repository:platform/**", None),
            ("repository:Platform/**:pull", None),
            ("platform/**:pull", None),
        ];
        for (text, expected) in cases {
            let parsed = ScopeLimit::parse(text);
            assert_eq!(
                parsed.as_ref().ok().map(ToString::to_string).as_deref(),
                *expected,
                "{text}: {parsed:?}"
            );
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let limit = ScopeLimit::parse("repository:team/**:pull").unwrap();
        let json = serde_json::to_string(&limit).unwrap();
        assert_eq!(json, "\"repository:team/**:pull\"");
        assert_eq!(serde_json::from_str::<ScopeLimit>(&json).unwrap(), limit);
        assert!(serde_json::from_str::<ScopeLimit>("\"repository:team/**:fly\"").is_err());
    }
}
