//! Who a rule is about (`who = [...]`) and who is asking (`Caller`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// How the caller authenticated: the `auth_type` claim and the `kind:KIND` subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CredentialKind {
    /// A user's password (Basic auth or the OAuth2 password grant).
    Password,
    /// A personal API token.
    Personal,
    /// A deploy token.
    Deploy,
    /// A short-lived job token.
    Job,
    /// A workload's OIDC ID token from a trusted issuer (never stored, never refreshable).
    Oidc,
}

impl CredentialKind {
    /// Every kind, in documentation order.
    pub const ALL: [CredentialKind; 5] = [
        CredentialKind::Password,
        CredentialKind::Personal,
        CredentialKind::Deploy,
        CredentialKind::Job,
        CredentialKind::Oidc,
    ];

    /// `"password"`, `"personal"`, `"deploy"`, `"job"` or `"oidc"`.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialKind::Password => "password",
            CredentialKind::Personal => "personal",
            CredentialKind::Deploy => "deploy",
            CredentialKind::Job => "job",
            CredentialKind::Oidc => "oidc",
        }
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A credential kind name that is not one of the five.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCredentialKind(String);

impl fmt::Display for UnknownCredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown credential kind {:?} (kinds are password, personal, deploy, job and oidc)",
            crate::scope::shorten(&self.0)
        )
    }
}

impl std::error::Error for UnknownCredentialKind {}

impl FromStr for CredentialKind {
    type Err = UnknownCredentialKind;

    fn from_str(text: &str) -> Result<CredentialKind, UnknownCredentialKind> {
        CredentialKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownCredentialKind(text.to_owned()))
    }
}

/// The caller a decision is made for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller<'a> {
    /// The authenticated account; `None` for an anonymous caller.
    pub account: Option<&'a str>,
    /// Groups from the credential store, added to the policy's static `[groups]`
    /// membership. Ignored for an anonymous caller.
    pub groups: &'a [String],
    /// How the caller authenticated; `None` for an anonymous caller. Ignored when
    /// `account` is `None`, and for a workload (whose kind is always `oidc`).
    pub kind: Option<CredentialKind>,
    /// A workload that presented a verified OIDC ID token; `None` for every other caller.
    ///
    /// A workload is in no group, is never `authenticated` (that subject means an account
    /// of the store: any job of a public CI service can get an ID token from a trusted
    /// issuer) and never matches `user:NAME` or `{account}`. Like a caller without
    /// credentials it matches `anyone` and `anonymous` (callers without an account), so it
    /// gets from rules not written for workloads exactly what an anonymous caller gets;
    /// it also matches `kind:oidc` and `oidc:ISSUER`, and only it can satisfy `when` and
    /// `{claim:NAME}`.
    pub workload: Option<Workload<'a>>,
}

impl Caller<'_> {
    /// The anonymous caller.
    pub const ANONYMOUS: Caller<'static> = Caller {
        account: None,
        groups: &[],
        kind: None,
        workload: None,
    };
}

/// A workload as the policy sees it: the trusted issuer that vouched for it, by the name
/// its `[[issuer]]` declares, and the verified claims of its ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload<'a> {
    /// The `name` of the `[[issuer]]` whose `url` equals the token's `iss`.
    pub issuer: &'a str,
    /// The ID token's claims (verified: signature, issuer, audience and times checked).
    pub claims: &'a Map<String, Value>,
}

/// One entry of a rule's `who` list; groups are resolved to their index in the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    User(String),
    Group(u32),
    Anyone,
    Anonymous,
    Authenticated,
    Kind(CredentialKind),
    /// `oidc:NAME`: a workload vouched for by the issuer with this index.
    Issuer(u32),
}

/// A subject as written, before its group name is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubjectText<'a> {
    Resolved(Subject),
    Group(&'a str),
    Issuer(&'a str),
}

pub(crate) const SUBJECT_HELP: &str =
    "subjects are user:NAME, group:NAME, kind:KIND, oidc:ISSUER, anyone, anonymous and authenticated";

/// Parses a `who` entry; the error says what to write instead.
pub(crate) fn parse_subject(text: &str) -> Result<SubjectText<'_>, String> {
    let subject = match text {
        "anyone" => Subject::Anyone,
        "anonymous" => Subject::Anonymous,
        "authenticated" => Subject::Authenticated,
        _ => match text.split_once(':') {
            Some(("user", name)) if is_identifier(name) => Subject::User(name.to_owned()),
            Some(("group", name)) if is_identifier(name) => return Ok(SubjectText::Group(name)),
            Some(("oidc", name)) if is_identifier(name) => return Ok(SubjectText::Issuer(name)),
            Some(("user" | "group" | "oidc", name)) => {
                return Err(format!(
                    "subject {text:?}: {name:?} is not a valid name (letters, digits, '.', '_', '-', '@', '+')"
                ))
            }
            Some(("kind", kind)) => Subject::Kind(
                kind.parse()
                    .map_err(|e: UnknownCredentialKind| format!("subject {text:?}: {e}"))?,
            ),
            _ => return Err(format!("unknown subject {text:?}; {SUBJECT_HELP}")),
        },
    };
    Ok(SubjectText::Resolved(subject))
}

/// Account and group names a policy may mention: 1 to 128 of `[A-Za-z0-9._@+-]`.
pub(crate) fn is_identifier(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@' | b'+'))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for kind in CredentialKind::ALL {
            assert_eq!(kind.as_str().parse::<CredentialKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{kind}\""));
        }
        assert!("Deploy".parse::<CredentialKind>().is_err());
    }

    #[test]
    fn subjects() {
        let cases: &[(&str, Option<SubjectText<'_>>)] = &[
            ("anyone", Some(SubjectText::Resolved(Subject::Anyone))),
            ("anonymous", Some(SubjectText::Resolved(Subject::Anonymous))),
            (
                "authenticated",
                Some(SubjectText::Resolved(Subject::Authenticated)),
            ),
            (
                "user:alice",
                Some(SubjectText::Resolved(Subject::User("alice".into()))),
            ),
            ("group:platform", Some(SubjectText::Group("platform"))),
            (
                "kind:deploy",
                Some(SubjectText::Resolved(Subject::Kind(CredentialKind::Deploy))),
            ),
            ("kind:robot", None),
            (
                "kind:oidc",
                Some(SubjectText::Resolved(Subject::Kind(CredentialKind::Oidc))),
            ),
            ("oidc:github", Some(SubjectText::Issuer("github"))),
            ("oidc:", None),
            ("oidc:a/b", None),
            ("user:", None),
            ("user:a b", None),
            ("group:", None),
            ("everyone", None),
            ("Anyone", None),
            ("team:platform", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_subject(text).ok(), *expected, "{text:?}");
        }
    }
}
