//! Requested scopes: `type[(class)]:name:action[,action...]`, parsed and printed.
//!
//! The type ends at the FIRST `:` and the actions start after the LAST `:`, so a name may
//! carry a `host:port/` prefix. Type and class are `[a-z0-9]+`, actions `[a-z]+` or `*`, the
//! name follows [`crate::name`]. Unknown types and actions parse (and are never granted).

use std::fmt;
use std::str::FromStr;

use crate::action::{ActionSet, ResourceType};
use crate::name::validate_name;

/// Most scopes one request may carry, counted before duplicates are merged.
pub const MAX_SCOPES: usize = 32;
/// Longest single `scope` parameter value, in bytes.
pub const MAX_SCOPE_VALUE_LEN: usize = 1024;
/// How much of an offending value an error message repeats.
const SHOWN_VALUE_CHARS: usize = 64;

/// One requested scope. Only [`Scope::parse`] and [`parse_scopes`] build it, so every
/// `Scope` is valid; `Display` prints the canonical form, which parses back to an equal value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    resource_type: String,
    class: Option<String>,
    name: String,
    /// Known actions as written (`*` kept as the literal wildcard).
    actions: ActionSet,
    /// Actions nobody can be granted, sorted and without duplicates; kept for printing.
    unknown_actions: Vec<String>,
}

impl Scope {
    /// Parses one scope (no surrounding whitespace, no space-separated list).
    pub fn parse(text: &str) -> Result<Scope, ScopeError> {
        if text.len() > MAX_SCOPE_VALUE_LEN {
            return Err(ScopeError::new(
                text,
                ScopeErrorKind::ValueTooLong { len: text.len() },
            ));
        }
        parse_one(text).map_err(|kind| ScopeError::new(text, kind))
    }

    /// The resource type as requested, e.g. `repository`.
    pub fn resource_type(&self) -> &str {
        &self.resource_type
    }

    /// The resource class, e.g. `plugin` in `repository(plugin):...`; matching ignores it.
    pub fn class(&self) -> Option<&str> {
        self.class.as_deref()
    }

    /// The resource name, e.g. `team/app` or `catalog`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Every requested action in canonical order: `pull`, `push`, `delete`, `*`, then
    /// unknown actions alphabetically.
    pub fn actions(&self) -> impl Iterator<Item = &str> {
        self.actions
            .names()
            .map(|name: &'static str| -> &str { name })
            .chain(self.unknown_actions.iter().map(String::as_str))
    }

    /// The type a policy can grant, or `None` for a type that is never granted.
    pub(crate) fn known_type(&self) -> Option<ResourceType> {
        ResourceType::parse(&self.resource_type)
    }

    /// Known actions as written, `*` kept literal.
    pub(crate) fn known_actions(&self) -> ActionSet {
        self.actions
    }

    pub(crate) fn unknown_actions(&self) -> &[String] {
        &self.unknown_actions
    }

    /// Whether this scope names the same resource as `other` (type and name; class ignored).
    fn is_same_resource(&self, other: &Scope) -> bool {
        self.resource_type == other.resource_type && self.name == other.name
    }

    fn merge(&mut self, other: Scope) {
        self.actions = self.actions.union(other.actions);
        self.unknown_actions.extend(other.unknown_actions);
        self.unknown_actions.sort_unstable();
        self.unknown_actions.dedup();
    }
}

impl FromStr for Scope {
    type Err = ScopeError;

    fn from_str(text: &str) -> Result<Scope, ScopeError> {
        Scope::parse(text)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource_type)?;
        if let Some(class) = &self.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:", self.name)?;
        for (i, action) in self.actions().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(action)?;
        }
        Ok(())
    }
}

/// Parses the `scope` parameter values of one request.
///
/// Each value may hold several scopes separated by whitespace (as go-containerregistry
/// sends them); empty values hold none. Scopes naming the same resource (type and name) are
/// merged into one with the union of their actions, keeping the first one's position and
/// class. Errors: a value over [`MAX_SCOPE_VALUE_LEN`] bytes, more than [`MAX_SCOPES`]
/// scopes in all, or a scope that does not parse; the error names the offending value.
pub fn parse_scopes<'a, I>(values: I) -> Result<Vec<Scope>, ScopeError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut scopes: Vec<Scope> = Vec::new();
    let mut count = 0usize;
    for value in values {
        if value.len() > MAX_SCOPE_VALUE_LEN {
            return Err(ScopeError::new(
                value,
                ScopeErrorKind::ValueTooLong { len: value.len() },
            ));
        }
        for text in value.split_ascii_whitespace() {
            count += 1;
            if count > MAX_SCOPES {
                return Err(ScopeError::new(text, ScopeErrorKind::TooManyScopes));
            }
            let scope = parse_one(text).map_err(|kind| ScopeError::new(text, kind))?;
            match scopes.iter_mut().find(|s| s.is_same_resource(&scope)) {
                Some(existing) => existing.merge(scope),
                None => scopes.push(scope),
            }
        }
    }
    Ok(scopes)
}

fn parse_one(text: &str) -> Result<Scope, ScopeErrorKind> {
    let (type_part, rest) = text.split_once(':').ok_or(ScopeErrorKind::Malformed)?;
    let (name, action_list) = rest.rsplit_once(':').ok_or(ScopeErrorKind::Malformed)?;
    let (resource_type, class) = match type_part.strip_suffix(')') {
        Some(open) => {
            let (resource_type, class) = open.split_once('(').ok_or(ScopeErrorKind::BadType)?;
            if !is_type_word(class) {
                return Err(ScopeErrorKind::BadClass);
            }
            (resource_type, Some(class.to_owned()))
        }
        None => (type_part, None),
    };
    if !is_type_word(resource_type) {
        return Err(ScopeErrorKind::BadType);
    }
    validate_name(name).map_err(ScopeErrorKind::BadName)?;
    if action_list.is_empty() {
        return Err(ScopeErrorKind::NoActions);
    }
    let mut actions = ActionSet::EMPTY;
    let mut unknown_actions = Vec::new();
    for action in action_list.split(',') {
        if action.is_empty() {
            return Err(ScopeErrorKind::EmptyAction);
        }
        if let Some(known) = ActionSet::parse_one(action) {
            actions = actions.union(known);
        } else if action.bytes().all(|b| b.is_ascii_lowercase()) {
            unknown_actions.push(action.to_owned());
        } else {
            return Err(ScopeErrorKind::BadAction);
        }
    }
    unknown_actions.sort_unstable();
    unknown_actions.dedup();
    Ok(Scope {
        resource_type: resource_type.to_owned(),
        class,
        name: name.to_owned(),
        actions,
        unknown_actions,
    })
}

/// `[a-z0-9]+`, the alphabet of types and classes.
fn is_type_word(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// A `scope` value that cannot be used; the component answers it with a 400.
///
/// `Display` gives a short message that quotes the offending value, escaped and cut to 64
/// characters, so it is safe to return to the client and to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeError {
    shown_value: String,
    kind: ScopeErrorKind,
}

/// What was wrong with a scope value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ScopeErrorKind {
    /// One parameter value is longer than [`MAX_SCOPE_VALUE_LEN`] bytes.
    ValueTooLong {
        /// The value's length in bytes.
        len: usize,
    },
    /// The request carries more than [`MAX_SCOPES`] scopes.
    TooManyScopes,
    /// Not of the form `type:name:actions`.
    Malformed,
    /// The type is not `[a-z0-9]+` (or the `(class)` is not closed properly).
    BadType,
    /// The class is not `[a-z0-9]+`.
    BadClass,
    /// The name breaks the reference grammar, for the reason given.
    BadName(&'static str),
    /// Nothing after the last `:`.
    NoActions,
    /// An empty entry in the action list (`pull,,push` or a trailing comma).
    EmptyAction,
    /// An action that is neither `[a-z]+` nor `*`.
    BadAction,
}

impl ScopeError {
    fn new(value: &str, kind: ScopeErrorKind) -> ScopeError {
        ScopeError {
            shown_value: shorten(value),
            kind,
        }
    }

    /// What was wrong.
    pub fn kind(&self) -> ScopeErrorKind {
        self.kind
    }

    /// The offending value as the message shows it (cut to 64 characters).
    pub fn shown_value(&self) -> &str {
        &self.shown_value
    }
}

impl fmt::Display for ScopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = &self.shown_value;
        match self.kind {
            ScopeErrorKind::ValueTooLong { len } => write!(
                f,
                "scope parameter {value:?} is {len} bytes long (at most {MAX_SCOPE_VALUE_LEN})"
            ),
            ScopeErrorKind::TooManyScopes => write!(
                f,
                "too many scopes: at most {MAX_SCOPES} per request, {value:?} is one more"
            ),
            kind => {
                let reason = match kind {
                    ScopeErrorKind::BadType => "the type must be lowercase letters and digits, optionally followed by (class)",
                    ScopeErrorKind::BadClass => "the class must be lowercase letters and digits",
                    ScopeErrorKind::BadName(reason) => reason,
                    ScopeErrorKind::NoActions => "no actions after the last ':'",
                    ScopeErrorKind::EmptyAction => "empty action in the list (doubled or trailing ',')",
                    ScopeErrorKind::BadAction => "actions must be lowercase letters or *",
                    _ => "expected type:name:action[,action...]",
                };
                write!(f, "invalid scope {value:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ScopeError {}

/// The first 64 characters of `value`, with `…` when cut.
pub(crate) fn shorten(value: &str) -> String {
    match value.char_indices().nth(SHOWN_VALUE_CHARS) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_owned(),
    }
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

    /// (input, canonical form or None when it must be rejected)
    const SINGLE: &[(&str, Option<&str>)] = &[
        ("repository:team/app:pull", Some("repository:team/app:pull")),
        (
            "repository:team/app:push,pull",
            Some("repository:team/app:pull,push"),
        ),
        (
            "repository:team/app:pull,pull",
            Some("repository:team/app:pull"),
        ),
        ("repository:team/app:*", Some("repository:team/app:*")),
        (
            "repository:team/app:delete,*,pull",
            Some("repository:team/app:pull,delete,*"),
        ),
        (
            "repository:localhost:5000/team/app:pull,push",
            Some("repository:localhost:5000/team/app:pull,push"),
        ),
        (
            "repository:[::1]:5000/app:pull",
            Some("repository:[::1]:5000/app:pull"),
        ),
        (
            "repository(plugin):vieux/sshfs:pull",
            Some("repository(plugin):vieux/sshfs:pull"),
        ),
        ("registry:catalog:*", Some("registry:catalog:*")),
        (
            "repository:app:frobnicate",
            Some("repository:app:frobnicate"),
        ),
        (
            "repository:app:zap,pull,abc",
            Some("repository:app:pull,abc,zap"),
        ),
        ("widget:thing:spin", Some("widget:thing:spin")),
        ("repository:app:", None),
        ("repository:app:pull,", None),
        ("repository:app:,pull", None),
        ("repository:app:pull,,push", None),
        ("repository:app", None),
        ("repository", None),
        ("", None),
        (":app:pull", None),
        ("repository::pull", None),
        ("Repository:app:pull", None),
        ("repository:App:pull", None),
        ("repository:team/App:pull", None),
        ("repository:app:PULL", None),
        ("repository:app:Pull", None),
        ("repository:app:pull-it", None),
        ("repository(Plugin):app:pull", None),
        ("repository():app:pull", None),
        ("repository(plugin:app:pull", None),
        ("repo sitory:app:pull", None),
        ("repository:caf\u{e9}:pull", None),
        ("repository:app:pu\u{142}l", None),
        ("\u{1f980}:app:pull", None),
        ("repository:team//app:pull", None),
        ("repository:/app:pull", None),
        ("repository:app/:pull", None),
        ("repository:localhost:5000:pull", None),
        ("repository:app\0:pull", None),
    ];

    #[test]
    fn single_scopes() {
        for (input, expected) in SINGLE {
            let parsed = Scope::parse(input);
            match expected {
                Some(canonical) => {
                    let scope = parsed.unwrap_or_else(|e| panic!("{input:?}: {e}"));
                    assert_eq!(scope.to_string(), *canonical, "{input:?}");
                    assert_eq!(Scope::parse(canonical).as_ref(), Ok(&scope));
                }
                None => assert!(parsed.is_err(), "{input:?} parsed as {parsed:?}"),
            }
        }
    }

    #[test]
    fn parts_are_split_at_first_and_last_colon() {
        let scope = Scope::parse("repository(plugin):localhost:5000/team/app:pull,push").unwrap();
        assert_eq!(scope.resource_type(), "repository");
        assert_eq!(scope.class(), Some("plugin"));
        assert_eq!(scope.name(), "localhost:5000/team/app");
        assert_eq!(scope.actions().collect::<Vec<_>>(), ["pull", "push"]);
    }

    #[test]
    fn lists() {
        type Case<'a> = (&'a [&'a str], Result<&'a [&'a str], ScopeErrorKind>);
        let cases: &[Case<'_>] = &[
            (&[], Ok(&[])),
            (&[""], Ok(&[])),
            (&["   "], Ok(&[])),
            (
                &["repository:a:pull repository:b:push"],
                Ok(&["repository:a:pull", "repository:b:push"]),
            ),
            (
                &["repository:a:pull\trepository:b:push  "],
                Ok(&["repository:a:pull", "repository:b:push"]),
            ),
            (
                &[
                    "repository:a:pull",
                    "repository:b:push",
                    "repository:a:push",
                ],
                Ok(&["repository:a:pull,push", "repository:b:push"]),
            ),
            (
                &["repository:a:pull repository(plugin):a:delete"],
                Ok(&["repository:a:pull,delete"]),
            ),
            (
                &["repository:a:pull registry:a:pull"],
                Ok(&["repository:a:pull", "registry:a:pull"]),
            ),
            (
                &["repository:a:pull,x", "repository:a:y,x"],
                Ok(&["repository:a:pull,x,y"]),
            ),
            (
                &["repository:a:pull repository:B:pull"],
                Err(ScopeErrorKind::BadName("the name must be lowercase")),
            ),
            (&["repository:a:pull,"], Err(ScopeErrorKind::EmptyAction)),
            (&["repository:a:"], Err(ScopeErrorKind::NoActions)),
        ];
        for (values, expected) in cases {
            let parsed = parse_scopes(values.iter().copied());
            let printed = parsed
                .as_ref()
                .map(|scopes| scopes.iter().map(ToString::to_string).collect::<Vec<_>>())
                .map_err(ScopeError::kind);
            let expected = expected.map(|list| list.iter().map(|s| s.to_string()).collect());
            assert_eq!(printed, expected, "{values:?}");
        }
    }

    #[test]
    fn scope_count_limit() {
        let at_limit: Vec<String> = (0..MAX_SCOPES)
            .map(|i| format!("repository:r{i}:pull"))
            .collect();
        assert_eq!(
            parse_scopes(at_limit.iter().map(String::as_str))
                .unwrap()
                .len(),
            MAX_SCOPES
        );
        let joined = at_limit.join(" ");
        let over = format!("{joined} repository:extra:pull");
        // The joined value is over 1 KiB; count across values instead.
        let values: Vec<&str> = at_limit
            .iter()
            .map(String::as_str)
            .chain(["repository:extra:pull"])
            .collect();
        let error = parse_scopes(values).unwrap_err();
        assert_eq!(error.kind(), ScopeErrorKind::TooManyScopes);
        assert!(
            error.to_string().contains("repository:extra:pull"),
            "{error}"
        );
        assert!(parse_scopes([over.as_str()]).is_err());
        // Duplicates count too: 33 copies of one scope are refused.
        let copies = vec!["repository:a:pull"; MAX_SCOPES + 1];
        assert_eq!(
            parse_scopes(copies).unwrap_err().kind(),
            ScopeErrorKind::TooManyScopes
        );
    }

    #[test]
    fn value_length_limit() {
        let name = "a".repeat(200);
        let scope = format!("repository:{name}:pull");
        let fits: Vec<&str> = std::iter::repeat_n(scope.as_str(), 4).collect();
        let fits = fits.join(" ");
        assert!(fits.len() <= MAX_SCOPE_VALUE_LEN);
        assert_eq!(parse_scopes([fits.as_str()]).unwrap().len(), 1);
        let too_long = format!("{fits} {scope}");
        let error = parse_scopes([too_long.as_str()]).unwrap_err();
        assert_eq!(
            error.kind(),
            ScopeErrorKind::ValueTooLong {
                len: too_long.len()
            }
        );
    }

    #[test]
    fn ten_kilobytes_of_garbage_is_refused_with_a_short_message() {
        let garbage: String = (0..10_240u32)
            .map(|i| char::from_u32(0x20 + (i * 7919) % 0x2f00).unwrap_or('?'))
            .collect();
        let error = parse_scopes([garbage.as_str()]).unwrap_err();
        assert!(matches!(error.kind(), ScopeErrorKind::ValueTooLong { .. }));
        assert!(error.to_string().len() < 400, "{error}");
        assert!(Scope::parse(&garbage).is_err());
        let colons = ":".repeat(10_240);
        assert!(parse_scopes([colons.as_str()]).is_err());
    }

    #[test]
    fn messages_quote_the_value_escaped() {
        let error = Scope::parse("repository:app:PULL\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid scope \"repository:app:PULL\\n\": actions must be lowercase letters or *"
        );
        let long = format!("repository:{}:pull", "A".repeat(100));
        let error = Scope::parse(&long).unwrap_err();
        assert!(error.shown_value().ends_with('…'));
        assert_eq!(error.shown_value().chars().count(), 65);
    }
}
