//! People who log in with their identity provider's ID token (single sign-on): which claim
//! of an issuer's tokens names the person, and the namespace segment `{person}` becomes.
//!
//! An `[[issuer]]` may say `person = "CLAIM"`: the ID token's CLAIM names the person, and a
//! rule's `{person}` segment stands for that name. With `person_domain = "example.com"`
//! the claim must be `LOCAL@example.com` (the domain compared without regard to case) and
//! `{person}` is LOCAL; without it the whole value is the name. The claim `email` counts
//! only when the token also says `email_verified` is true, since most providers let people
//! type an address they do not own. A name that is not one valid lowercase path component
//! (`Jane.Doe`, `jane/x`, an address from another domain) makes `{person}` match nothing,
//! so such a person simply gets no personal namespace.

use serde_json::{Map, Value};

use crate::name::is_path_component;
use crate::pattern::is_claim_name;

/// An issuer's `person` (and `person_domain`), validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PersonClaim {
    claim: String,
    /// Lowercase; `None` takes the claim's whole value.
    domain: Option<String>,
}

impl PersonClaim {
    /// Checks `person` and `person_domain` as written; the error says what to change.
    pub(crate) fn parse(claim: &str, domain: Option<&str>) -> Result<PersonClaim, String> {
        if !is_claim_name(claim) {
            return Err(format!(
                "`person` {claim:?}: a claim name is 1 to 64 letters, digits, '_', '-' or '.'"
            ));
        }
        let domain = match domain {
            None => None,
            Some(domain) if is_domain(domain) => Some(domain.to_ascii_lowercase()),
            Some(domain) => {
                return Err(format!(
                    "`person_domain` {domain:?} is not a domain name (letters, digits and '-' in dot-separated labels, e.g. \"example.com\")"
                ))
            }
        };
        Ok(PersonClaim {
            claim: claim.to_owned(),
            domain,
        })
    }

    pub(crate) fn claim(&self) -> &str {
        &self.claim
    }

    pub(crate) fn domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    /// The person's name in `claims`, as `{person}` stands for it, or `None` when the
    /// claim is absent, not a string, unverified, of another domain, or not one valid
    /// lowercase path component.
    pub(crate) fn name<'c>(&self, claims: &'c Map<String, Value>) -> Option<&'c str> {
        let value = claims.get(&self.claim)?.as_str()?;
        if self.claim == "email" && !is_verified(claims.get("email_verified")) {
            return None;
        }
        let name = match &self.domain {
            None => value,
            Some(domain) => {
                let (local, at) = value.rsplit_once('@')?;
                if !at.eq_ignore_ascii_case(domain) {
                    return None;
                }
                local
            }
        };
        Some(name).filter(|name| is_path_component(name))
    }
}

/// `email_verified` as providers send it: a JSON `true`, or the string `"true"` (some
/// providers, Amazon Cognito among them, send a string).
fn is_verified(value: Option<&Value>) -> bool {
    match value {
        Some(Value::Bool(verified)) => *verified,
        Some(Value::String(text)) => text == "true",
        _ => false,
    }
}

/// A DNS name: 1 to 253 bytes of dot-separated labels, each 1 to 63 letters, digits or
/// inner `-`.
fn is_domain(text: &str) -> bool {
    (1..=253).contains(&text.len())
        && text.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_whole_claim_names_the_person_when_it_is_one_lowercase_component() {
        let person = PersonClaim::parse("preferred_username", None).unwrap();
        for (value, expected) in [
            (json!("jane"), Some("jane")),
            (json!("jane.doe"), Some("jane.doe")),
            (json!("jane-doe_2"), Some("jane-doe_2")),
            (json!("Jane"), None),
            (json!("jane/x"), None),
            (json!("jane@example.com"), None),
            (json!(".."), None),
            (json!(""), None),
            (json!(7), None),
            (json!(["jane"]), None),
        ] {
            let c = claims(json!({ "preferred_username": value.clone() }));
            assert_eq!(person.name(&c), expected, "{value}");
        }
        assert_eq!(person.name(&claims(json!({"sub": "jane"}))), None);
    }

    #[test]
    fn a_domain_takes_the_local_part_of_addresses_in_that_domain_only() {
        let person = PersonClaim::parse("upn", Some("Example.com")).unwrap();
        assert_eq!(person.domain(), Some("example.com"));
        for (value, expected) in [
            ("jane@example.com", Some("jane")),
            ("jane@EXAMPLE.COM", Some("jane")),
            ("jane@evil.example.com", None),
            ("jane@example.com.evil", None),
            ("jane", None),
            ("Jane@example.com", None),
            ("a@b@example.com", None),
            ("@example.com", None),
        ] {
            assert_eq!(
                person.name(&claims(json!({ "upn": value }))),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn an_email_counts_only_when_verified() {
        let person = PersonClaim::parse("email", Some("example.com")).unwrap();
        for (verified, expected) in [
            (Some(json!(true)), Some("jane")),
            (Some(json!("true")), Some("jane")),
            (Some(json!(false)), None),
            (Some(json!("false")), None),
            (Some(json!(1)), None),
            (None, None),
        ] {
            let mut c = claims(json!({"email": "jane@example.com"}));
            if let Some(verified) = verified.clone() {
                c.insert("email_verified".into(), verified);
            }
            assert_eq!(person.name(&c), expected, "{verified:?}");
        }
    }

    #[test]
    fn bad_declarations_are_refused() {
        assert!(PersonClaim::parse("preferred username", None)
            .unwrap_err()
            .contains("`person`"));
        for domain in ["", "example..com", "-x.com", "x_y.com", "exa mple.com"] {
            assert!(
                PersonClaim::parse("email", Some(domain))
                    .unwrap_err()
                    .contains("`person_domain`"),
                "{domain:?}"
            );
        }
    }
}
