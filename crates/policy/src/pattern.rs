//! Resource patterns: `repository:team/**`, `repository:{account}/*`, `registry:catalog`.
//!
//! A pattern is a known type, a `:`, and a name pattern of `/`-separated segments. A
//! segment is a literal (checked against the name grammar), `*` (exactly one segment),
//! `**` (any number of segments, none included), `{account}` (exactly the caller's own
//! account name, only for an authenticated caller whose account is a valid lowercase path
//! component), or a literal with `*` inside (`ci-*`: any characters within one segment).
//! Matching is exact otherwise: case-sensitive, no `?`, no character classes.
//!
//! In policy rules (not in credential limits) a whole segment may also be `{claim:NAME}`:
//! the workload's ID-token claim NAME, standing for as many segments as it holds, and only
//! when it is a valid repository path; otherwise the pattern matches nothing. A whole
//! segment may also be `{person}`: the name of the person an ID token identifies (see
//! `person.rs`), exactly one segment, or nothing matches.

use std::fmt;

use serde_json::{Map, Value};

use crate::action::ResourceType;
use crate::name::{component_reason, is_host, is_path_component, MAX_NAME_LEN};

pub(crate) const ACCOUNT_PLACEHOLDER: &str = "{account}";
const PERSON_PLACEHOLDER: &str = "{person}";
const CLAIM_PLACEHOLDER_START: &str = "{claim:";

/// One segment of a name pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// Matches exactly this segment.
    Literal(Box<str>),
    /// A segment with `*` inside, e.g. `ci-*`.
    Glob(Box<str>),
    /// `*`: any one segment.
    Star,
    /// `**`: any number of segments.
    DoubleStar,
    /// `{account}`: the caller's own account name.
    Account,
    /// `{claim:NAME}`: the workload's claim NAME, one or more segments.
    Claim(Box<str>),
    /// `{person}`: the name of the person the ID token identifies, one segment.
    Person,
}

impl Segment {
    /// Whether this segment (not `**`) matches one name segment.
    fn matches_one(&self, segment: &str, account: Option<&str>) -> bool {
        match self {
            Segment::Literal(literal) => **literal == *segment,
            Segment::Glob(glob) => glob_matches(glob.as_bytes(), segment.as_bytes()),
            Segment::Star => true,
            Segment::DoubleStar => false,
            Segment::Account => account == Some(segment),
            // Expanded into literals before matching (see `ResourcePattern::matches_with`).
            Segment::Claim(_) | Segment::Person => false,
        }
    }
}

/// A parsed resource pattern. Only [`ResourcePattern::parse`] builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResourcePattern {
    resource_type: ResourceType,
    segments: Vec<Segment>,
    text: Box<str>,
}

impl ResourcePattern {
    /// Parses `type:name-pattern`; the error says what to change. `{claim:NAME}` and
    /// `{person}` are refused (credential limits have no claims to fill them).
    pub(crate) fn parse(text: &str) -> Result<ResourcePattern, String> {
        let pattern = ResourcePattern::parse_rule(text)?;
        if pattern.has_claims() {
            return Err(format!(
                "pattern {text:?}: {{claim:NAME}} and {{person}} are only allowed in policy rules"
            ));
        }
        Ok(pattern)
    }

    /// Parses a rule's `what` entry: like [`ResourcePattern::parse`], `{claim:NAME}` and
    /// `{person}` allowed.
    pub(crate) fn parse_rule(text: &str) -> Result<ResourcePattern, String> {
        let Some((type_text, name_pattern)) = text.split_once(':') else {
            return Err(format!(
                "pattern {text:?} has no type; write e.g. \"repository:{text}\""
            ));
        };
        let Some(resource_type) = ResourceType::parse(type_text) else {
            let hint = if type_text.contains('(') {
                "resource classes are matched by type alone, leave the class out"
            } else {
                "the types are repository and registry"
            };
            return Err(format!(
                "pattern {text:?}: unknown resource type {type_text:?} ({hint})"
            ));
        };
        let segments = parse_name_pattern(name_pattern)
            .map_err(|reason| format!("pattern {text:?}: {reason}"))?;
        if resource_type == ResourceType::Registry
            && segments != [Segment::Literal("catalog".into())]
        {
            return Err(format!(
                "pattern {text:?}: the only registry resource is registry:catalog"
            ));
        }
        Ok(ResourcePattern {
            resource_type,
            segments,
            text: text.into(),
        })
    }

    pub(crate) fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    pub(crate) fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Whether the pattern holds a `{claim:NAME}` or `{person}` placeholder: one only a
    /// workload's claims can fill.
    pub(crate) fn has_claims(&self) -> bool {
        self.segments
            .iter()
            .any(|segment| matches!(segment, Segment::Claim(_) | Segment::Person))
    }

    /// Whether the pattern holds `{person}`.
    pub(crate) fn has_person(&self) -> bool {
        self.segments.contains(&Segment::Person)
    }

    /// Whether `{person}` is the first segment, and the only one.
    pub(crate) fn starts_with_person(&self) -> bool {
        self.segments.first() == Some(&Segment::Person)
            && self
                .segments
                .iter()
                .filter(|s| **s == Segment::Person)
                .count()
                == 1
    }

    /// [`ResourcePattern::matches`] with the workload's claims for `{claim:NAME}`: each
    /// placeholder becomes the claim's segments when the claim is a string holding a valid
    /// repository path; otherwise (absent, not a string, invalid, or no workload at all)
    /// the pattern matches nothing. `{person}` becomes `person`, the name the issuer's
    /// `person` claim gives (already one valid path component), or matches nothing.
    pub(crate) fn matches_with(
        &self,
        name_segments: &[&str],
        account: Option<&str>,
        claims: Option<&Map<String, Value>>,
        person: Option<&str>,
    ) -> bool {
        if !self.has_claims() {
            return segments_match(&self.segments, name_segments, account);
        }
        let Some(claims) = claims else {
            return false;
        };
        let mut expanded = Vec::with_capacity(self.segments.len() + 4);
        for segment in &self.segments {
            match segment {
                Segment::Person => match person {
                    Some(person) => expanded.push(Segment::Literal(person.into())),
                    None => return false,
                },
                Segment::Claim(name) => {
                    let Some(path) = claims
                        .get(&**name)
                        .and_then(Value::as_str)
                        .filter(|value| is_repository_path(value))
                    else {
                        return false;
                    };
                    expanded.extend(path.split('/').map(|part| Segment::Literal(part.into())));
                }
                other => expanded.push(other.clone()),
            }
        }
        segments_match(&expanded, name_segments, account)
    }

    /// Whether the pattern's first segment is a literal equal to `name` or a
    /// glob matching it (`ci-*` matches `ci-foo`). `*`, `**` and `{account}`
    /// name no particular namespace and never count.
    pub(crate) fn is_leading_segment(&self, name: &str) -> bool {
        match self.segments.first() {
            Some(Segment::Literal(literal)) => **literal == *name,
            Some(Segment::Glob(glob)) => glob_matches(glob.as_bytes(), name.as_bytes()),
            Some(
                Segment::Star
                | Segment::DoubleStar
                | Segment::Account
                | Segment::Claim(_)
                | Segment::Person,
            )
            | None => false,
        }
    }

    /// Whether the first segment is `{claim:NAME}`: the claim, not the policy, names the
    /// namespace the rule reaches.
    pub(crate) fn starts_with_claim(&self) -> bool {
        matches!(self.segments.first(), Some(Segment::Claim(_)))
    }

    /// Whether the pattern matches a name already split at `/`.
    ///
    /// `account` must be the caller's account only when it is a valid path component (see
    /// [`account_segment`]); `None` makes `{account}` match nothing.
    pub(crate) fn matches(&self, name_segments: &[&str], account: Option<&str>) -> bool {
        self.matches_with(name_segments, account, None, None)
    }
}

/// A repository path a claim may stand for: lowercase components joined by `/`, no host,
/// at most 255 bytes (so `Acme/App`, `../x` or `a//b` never stand for anything).
fn is_repository_path(value: &str) -> bool {
    !value.is_empty() && value.len() <= MAX_NAME_LEN && value.split('/').all(is_path_component)
}

/// Whether `pattern` (no `{claim:NAME}` left in it) matches a name already split at `/`.
pub(crate) fn segments_match(
    pattern: &[Segment],
    name_segments: &[&str],
    account: Option<&str>,
) -> bool {
    // The classic wildcard walk with one backtracking point, over segments: `**` is the
    // star, every other segment matches exactly one name segment. Linear in practice,
    // O(pattern × name) at worst; both are bounded by the 255-byte name limit.
    let (mut p, mut n) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while n < name_segments.len() {
        match pattern.get(p) {
            Some(Segment::DoubleStar) => {
                backtrack = Some((p, n));
                p += 1;
            }
            Some(segment) if segment.matches_one(name_segments[n], account) => {
                p += 1;
                n += 1;
            }
            _ => match backtrack {
                Some((star, from)) => {
                    backtrack = Some((star, from + 1));
                    p = star + 1;
                    n = from + 1;
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|s| *s == Segment::DoubleStar)
}

impl fmt::Display for ResourcePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The caller's account as `{account}` may match it: only a name that is itself one valid
/// lowercase path component (so `alice/..`, `Alice` or `a/b` never match anything).
pub(crate) fn account_segment(account: Option<&str>) -> Option<&str> {
    account.filter(|a| is_path_component(a))
}

fn parse_name_pattern(pattern: &str) -> Result<Vec<Segment>, String> {
    if pattern.is_empty() {
        return Err("the name pattern is empty".into());
    }
    if pattern.len() > MAX_NAME_LEN {
        return Err(format!(
            "the name pattern is longer than {MAX_NAME_LEN} characters"
        ));
    }
    let has_several = pattern.contains('/');
    pattern
        .split('/')
        .enumerate()
        .map(|(i, segment)| parse_segment(segment, i == 0 && has_several))
        .collect()
}

fn parse_segment(segment: &str, may_be_host: bool) -> Result<Segment, String> {
    match segment {
        "**" => return Ok(Segment::DoubleStar),
        "*" => return Ok(Segment::Star),
        ACCOUNT_PLACEHOLDER => return Ok(Segment::Account),
        PERSON_PLACEHOLDER => return Ok(Segment::Person),
        "" => return Err("empty segment (a leading, trailing or doubled '/')".into()),
        _ => {}
    }
    if let Some(name) = segment
        .strip_prefix(CLAIM_PLACEHOLDER_START)
        .and_then(|rest| rest.strip_suffix('}'))
    {
        if !is_claim_name(name) {
            return Err(format!(
                "segment {segment:?}: a claim name is 1 to 64 letters, digits, '_', '-' or '.'"
            ));
        }
        return Ok(Segment::Claim(name.into()));
    }
    if segment.contains('{') || segment.contains('}') {
        return Err(format!(
            "segment {segment:?}: the placeholders are {{account}}, {{person}} and {{claim:NAME}}, each a whole segment"
        ));
    }
    if segment.contains("**") {
        return Err(format!("segment {segment:?}: ** must be a whole segment"));
    }
    // A glob is checked as the literal it would be with each `*` standing for one letter.
    let is_glob = segment.contains('*');
    let probe = if is_glob {
        std::borrow::Cow::Owned(segment.replace('*', "a"))
    } else {
        std::borrow::Cow::Borrowed(segment)
    };
    let is_valid = is_path_component(&probe) || may_be_host && is_host(&probe);
    if !is_valid {
        return Err(format!("segment {segment:?}: {}", component_reason(&probe)));
    }
    Ok(if is_glob {
        Segment::Glob(segment.into())
    } else {
        Segment::Literal(segment.into())
    })
}

/// A claim name usable in `{claim:NAME}` and `when`.
pub(crate) fn is_claim_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Longest claim value `when` looks at, in bytes; longer values never match.
const MAX_CLAIM_VALUE_LEN: usize = 1024;

/// How many elements of a list-valued claim `when` looks at; later ones never match.
/// Providers cap group claims well below this (Entra ID sends at most 200 groups).
const MAX_CLAIM_LIST_LEN: usize = 256;

/// A `when` pattern for one claim's value: the name pattern syntax (`*` within one
/// `/`-separated segment, `**` any number of segments), literals taken as written
/// (case-sensitive, any characters but `*`), no placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClaimPattern {
    segments: Vec<Segment>,
    text: Box<str>,
}

impl ClaimPattern {
    /// Whether the first segment matches `name` as a literal or a glob (`*` and `**`
    /// reserve nothing), as [`ResourcePattern::is_leading_segment`] does for names.
    pub(crate) fn is_leading_segment(&self, name: &str) -> bool {
        match self.segments.first() {
            Some(Segment::Literal(literal)) => **literal == *name,
            Some(Segment::Glob(glob)) => glob_matches(glob.as_bytes(), name.as_bytes()),
            _ => false,
        }
    }

    /// Parses a `when` value; the error says what to change.
    pub(crate) fn parse(text: &str) -> Result<ClaimPattern, String> {
        if text.is_empty() || text.len() > MAX_CLAIM_VALUE_LEN {
            return Err(format!(
                "`when` pattern {:?} must be 1 to {MAX_CLAIM_VALUE_LEN} bytes",
                crate::scope::shorten(text)
            ));
        }
        let segments = text
            .split('/')
            .map(|segment| match segment {
                "**" => Ok(Segment::DoubleStar),
                "*" => Ok(Segment::Star),
                _ if segment.contains("**") => Err(format!(
                    "`when` pattern {text:?}: ** must be a whole segment"
                )),
                _ if segment.contains('*') => Ok(Segment::Glob(segment.into())),
                _ => Ok(Segment::Literal(segment.into())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClaimPattern {
            segments,
            text: text.into(),
        })
    }

    /// Whether the claim `value` matches: a string up to 1 KiB that matches, or a list
    /// (a `groups` claim) with such a string among its first 256 elements. Anything else
    /// (absent, a number, an object, a list of lists) never matches. A string over 1 KiB,
    /// or a list longer than 256 elements with no match among them, matches exactly when
    /// `too_long_matches` (a deny's condition: it must not be escaped by padding).
    pub(crate) fn matches(&self, value: Option<&Value>, too_long_matches: bool) -> bool {
        match value {
            Some(Value::String(text)) => self.matches_text(text, too_long_matches),
            Some(Value::Array(items)) => {
                items.iter().take(MAX_CLAIM_LIST_LEN).any(|item| {
                    item.as_str()
                        .is_some_and(|text| self.matches_text(text, too_long_matches))
                }) || (too_long_matches && items.len() > MAX_CLAIM_LIST_LEN)
            }
            _ => false,
        }
    }

    fn matches_text(&self, text: &str, too_long_matches: bool) -> bool {
        if text.len() > MAX_CLAIM_VALUE_LEN {
            return too_long_matches;
        }
        let parts: Vec<&str> = text.split('/').collect();
        segments_match(&self.segments, &parts, None)
    }
}

impl fmt::Display for ClaimPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// `*`-only wildcard match within one segment (no `/` can occur in either side).
fn glob_matches(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                backtrack = Some((g, t));
                g += 1;
            }
            Some(c) if *c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, from)) => {
                    backtrack = Some((star, from + 1));
                    g = star + 1;
                    t = from + 1;
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;

    #[test]
    fn parse_accepts_and_rejects() {
        let cases: &[(&str, bool)] = &[
            ("repository:platform/**", true),
            ("repository:**", true),
            ("repository:*", true),
            ("repository:{account}/**", true),
            ("repository:users/{account}/*", true),
            ("repository:ci-*/cache", true),
            ("repository:*.mirror/**", true),
            ("repository:localhost:5000/team/**", true),
            ("repository:a/**/b", true),
            ("registry:catalog", true),
            ("registry:*", false),
            ("registry:catalogue", false),
            ("repository(plugin):x/**", false),
            ("repo:x", false),
            ("platform/**", false),
            ("repository:", false),
            ("repository:Platform/**", false),
            ("repository:platform//x", false),
            ("repository:platform/", false),
            ("repository:pla**", false),
            ("repository:***", false),
            ("repository:{account}-tools", false),
            ("repository:{user}/**", false),
            ("repository:{account", false),
            ("repository:team app", false),
            ("repository:-*", false),
            ("repository:a..*", false),
        ];
        for (text, expected) in cases {
            let parsed = ResourcePattern::parse(text);
            assert_eq!(parsed.is_ok(), *expected, "{text:?}: {parsed:?}");
        }
    }

    #[test]
    fn matching() {
        // (pattern, name, account, expected)
        let cases: &[(&str, &str, Option<&str>, bool)] = &[
            ("repository:platform/**", "platform/api", None, true),
            ("repository:platform/**", "platform/api/v2", None, true),
            ("repository:platform/**", "platform", None, true),
            ("repository:platform/**", "platformx/api", None, false),
            ("repository:platform/**", "other/platform/api", None, false),
            ("repository:platform/*", "platform/api", None, true),
            ("repository:platform/*", "platform/api/v2", None, false),
            ("repository:platform/*", "platform", None, false),
            ("repository:*", "app", None, true),
            ("repository:*", "team/app", None, false),
            ("repository:**", "a/b/c", None, true),
            ("repository:a/**/b", "a/b", None, true),
            ("repository:a/**/b", "a/x/y/b", None, true),
            ("repository:a/**/b", "a/x/y/c", None, false),
            ("repository:**/cache", "cache", None, true),
            ("repository:**/cache", "x/y/cache", None, true),
            ("repository:**/cache", "x/cache/y", None, false),
            ("repository:ci-*/cache", "ci-runner/cache", None, true),
            ("repository:ci-*/cache", "ci-/cache", None, true),
            ("repository:ci-*/cache", "cd-runner/cache", None, false),
            ("repository:*-tools", "team-tools", None, true),
            ("repository:*-tools", "team-tool", None, false),
            ("repository:{account}/**", "alice/app", Some("alice"), true),
            ("repository:{account}/**", "alice", Some("alice"), true),
            ("repository:{account}/**", "bob/app", Some("alice"), false),
            ("repository:{account}/**", "alice/app", None, false),
            (
                "repository:users/{account}/*",
                "users/alice/app",
                Some("alice"),
                true,
            ),
            (
                "repository:users/{account}/*",
                "users/bob/app",
                Some("alice"),
                false,
            ),
            (
                "repository:localhost:5000/**",
                "localhost:5000/team/app",
                None,
                true,
            ),
            ("repository:*/app", "localhost:5000/app", None, true),
            ("registry:catalog", "catalog", None, true),
            ("repository:team/app", "team/app", None, true),
            ("repository:team/app", "team/app2", None, false),
            ("repository:team/app", "team", None, false),
        ];
        for (pattern, name, account, expected) in cases {
            let parsed = ResourcePattern::parse(pattern).unwrap();
            let segments: Vec<&str> = name.split('/').collect();
            assert_eq!(
                parsed.matches(&segments, account_segment(*account)),
                *expected,
                "{pattern} vs {name} as {account:?}"
            );
        }
    }

    #[test]
    fn account_must_be_one_lowercase_component() {
        let pattern = ResourcePattern::parse("repository:{account}/**").unwrap();
        for account in ["alice/..", "Alice", "a/b", "..", "", "alice bob", "alice/"] {
            let name: Vec<&str> = account.split('/').chain(["app"]).collect();
            assert!(
                !pattern.matches(&name, account_segment(Some(account))),
                "{account:?} matched"
            );
        }
        assert_eq!(account_segment(Some("alice.smith")), Some("alice.smith"));
    }

    #[test]
    fn many_double_stars_stay_cheap() {
        let pattern = ResourcePattern::parse(&format!("repository:{}x", "**/".repeat(60))).unwrap();
        let name: Vec<&str> = std::iter::repeat_n("a", 120).collect();
        assert!(!pattern.matches(&name, None));
    }

    #[test]
    fn glob_within_segment() {
        let cases: &[(&str, &str, bool)] = &[
            ("a*", "a", true),
            ("a*", "abc", true),
            ("*c", "abc", true),
            ("a*c", "abbbc", true),
            ("a*c", "abbbd", false),
            ("*b*", "abc", true),
            ("a*b*c", "axbxxc", true),
            ("a*b*c", "axxc", false),
        ];
        for (glob, text, expected) in cases {
            assert_eq!(
                glob_matches(glob.as_bytes(), text.as_bytes()),
                *expected,
                "{glob} {text}"
            );
        }
    }
}
