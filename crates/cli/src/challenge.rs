//! `WWW-Authenticate` challenges (RFC 7235 section 4.1, RFC 6750 section 3), parsed and
//! printed.
//!
//! A header value holds one or more challenges separated by commas; each is an
//! auth-scheme followed by nothing, a token68, or comma-separated `name=value` parameters
//! whose values are tokens or quoted strings with `\` escapes. Several header lines are
//! the same as one line with their values joined by commas. The bytes come from whatever
//! server the user pointed the CLI at, so nothing here panics, and input longer than
//! [`MAX_HEADER_LEN`] is refused before parsing.

use std::fmt;

/// Longest header value (all lines together) that is parsed at all, in bytes.
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// One challenge. Only [`parse`] builds it from text and [`Challenge::new`] from parts
/// that [`parse`] would accept, so `Display` prints text that parses back to an equal
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// The scheme as the server wrote it; compare with [`Challenge::is_scheme`].
    scheme: String,
    /// A token68 (e.g. `Negotiate abc==`) instead of parameters.
    token68: Option<String>,
    /// Parameters in order, names lowercased, each name once.
    params: Vec<(String, String)>,
}

/// Why a header value is not a list of challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChallengeError {
    /// Longer than [`MAX_HEADER_LEN`].
    TooLong { len: usize },
    /// No challenge at all (empty or only commas and spaces).
    Empty,
    /// Something unexpected at this byte offset.
    Unexpected {
        offset: usize,
        expected: &'static str,
    },
    /// A quoted string with no closing quote.
    UnterminatedQuote { offset: usize },
    /// The same parameter twice in one challenge (RFC 7235: each name only once).
    DuplicateParam { name: String },
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChallengeError::TooLong { len } => {
                write!(f, "header of {len} bytes, more than {MAX_HEADER_LEN}")
            }
            ChallengeError::Empty => f.write_str("no challenge"),
            ChallengeError::Unexpected { offset, expected } => {
                write!(f, "expected {expected} at byte {offset}")
            }
            ChallengeError::UnterminatedQuote { offset } => {
                write!(f, "quoted string opened at byte {offset} is not closed")
            }
            ChallengeError::DuplicateParam { name } => {
                // `name` is a token (ASCII, no spaces or quotes), so it prints safely.
                write!(f, "parameter {name:?} given twice")
            }
        }
    }
}

impl std::error::Error for ChallengeError {}

impl Challenge {
    /// A challenge from parts, or `None` where [`parse`] could not produce it: the scheme
    /// and parameter names must be tokens (names are lowercased), names distinct, values
    /// free of control characters other than tab, and `token68` (which excludes
    /// parameters) a token68.
    pub fn new(scheme: &str, token68: Option<&str>, params: &[(&str, &str)]) -> Option<Challenge> {
        if !is_token(scheme) {
            return None;
        }
        if let Some(value) = token68 {
            if !params.is_empty() || !is_token68(value) {
                return None;
            }
        }
        let mut owned: Vec<(String, String)> = Vec::with_capacity(params.len());
        for (name, value) in params {
            let name = name.to_ascii_lowercase();
            if !is_token(&name)
                || !value.chars().all(is_quotable)
                || owned.iter().any(|(seen, _)| *seen == name)
            {
                return None;
            }
            owned.push((name, (*value).to_string()));
        }
        Some(Challenge {
            scheme: scheme.to_string(),
            token68: token68.map(str::to_string),
            params: owned,
        })
    }

    /// The auth-scheme as sent, e.g. `Bearer`.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme` (schemes are case-insensitive).
    pub fn is_scheme(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The token68, for schemes that send one instead of parameters.
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The value of parameter `name` (case-insensitive), unescaped.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Every parameter in order, names lowercased.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }
}

impl fmt::Display for Challenge {
    /// The canonical form: `Scheme token68`, or `Scheme a="x", b="y"` with every value
    /// quoted and `"` and `\` escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(token68) = &self.token68 {
            return write!(f, " {token68}");
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            f.write_str(if i == 0 { " " } else { ", " })?;
            write!(f, "{name}=\"")?;
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// Prints challenges as one header value, the inverse of [`parse`].
pub fn print(challenges: &[Challenge]) -> String {
    challenges
        .iter()
        .map(Challenge::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Parses every `WWW-Authenticate` header line of one response.
pub fn parse_lines<'a>(
    lines: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<Challenge>, ChallengeError> {
    let joined = lines.into_iter().collect::<Vec<_>>().join(", ");
    parse(&joined)
}

/// Parses one `WWW-Authenticate` header value into its challenges, in order.
///
/// Scheme and parameter names are case-insensitive (names are stored lowercased); a
/// parameter given twice in one challenge, a stray character or an unclosed quote is an
/// error rather than a guess, so a confusing header never picks the realm.
pub fn parse(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(ChallengeError::TooLong { len: header.len() });
    }
    let mut cursor = Cursor {
        bytes: header.as_bytes(),
        text: header,
        at: 0,
    };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_list_separators();
        if cursor.is_end() {
            break;
        }
        challenges.push(cursor.challenge()?);
        cursor.skip_whitespace();
        if cursor.is_end() {
            break;
        }
        cursor.expect(b',', "a comma between challenges")?;
    }
    if challenges.is_empty() {
        return Err(ChallengeError::Empty);
    }
    Ok(challenges)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
}

impl Cursor<'_> {
    fn is_end(&self) -> bool {
        self.at >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    /// Skips whitespace and empty list elements (RFC 7230 section 7 allows `, ,`).
    fn skip_list_separators(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b',')) {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), ChallengeError> {
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn unexpected(&self, expected: &'static str) -> ChallengeError {
        ChallengeError::Unexpected {
            offset: self.at,
            expected,
        }
    }

    /// The longest run of bytes satisfying `accept` from here, as text.
    fn take_while(&mut self, accept: impl Fn(u8) -> bool) -> &str {
        let start = self.at;
        while self.peek().is_some_and(&accept) {
            self.at += 1;
        }
        // Only ASCII bytes are accepted by every caller, so both ends are char
        // boundaries; `get` keeps this panic-free even if that ever changed.
        self.text.get(start..self.at).unwrap_or_default()
    }

    fn token(&mut self, expected: &'static str) -> Result<String, ChallengeError> {
        let token = self.take_while(is_tchar);
        if token.is_empty() {
            return Err(self.unexpected(expected));
        }
        Ok(token.to_string())
    }

    /// Whether `name BWS =` starts here and the `=` is not the padding of a token68, i.e.
    /// whether an auth-param (rather than a token68 or the next challenge) follows.
    fn is_param_ahead(&self) -> bool {
        let mut at = self.at;
        let start = at;
        while self.bytes.get(at).copied().is_some_and(is_tchar) {
            at += 1;
        }
        if at == start {
            return false;
        }
        while matches!(self.bytes.get(at), Some(b' ' | b'\t')) {
            at += 1;
        }
        if self.bytes.get(at) != Some(&b'=') {
            return false;
        }
        // `abc=` or `abc==` followed by the end or a comma is a token68.
        let mut after = at;
        while self.bytes.get(after) == Some(&b'=') {
            after += 1;
        }
        while matches!(self.bytes.get(after), Some(b' ' | b'\t')) {
            after += 1;
        }
        !matches!(self.bytes.get(after), None | Some(b','))
    }

    fn challenge(&mut self) -> Result<Challenge, ChallengeError> {
        let scheme = self.token("an auth-scheme")?;
        let mut challenge = Challenge {
            scheme,
            token68: None,
            params: Vec::new(),
        };
        let before_space = self.at;
        self.skip_whitespace();
        if self.is_end() || self.peek() == Some(b',') {
            return Ok(challenge);
        }
        if self.at == before_space {
            return Err(self.unexpected("a space after the auth-scheme"));
        }
        if !self.is_param_ahead() {
            let start = self.at;
            let body = self.take_while(is_token68_char).to_string();
            let padding = self.take_while(|b| b == b'=').to_string();
            if body.is_empty() {
                self.at = start;
                return Err(self.unexpected("a token68 or a parameter"));
            }
            challenge.token68 = Some(body + &padding);
            return Ok(challenge);
        }
        loop {
            let name = self.token("a parameter name")?.to_ascii_lowercase();
            self.skip_whitespace();
            self.expect(b'=', "`=` after a parameter name")?;
            self.skip_whitespace();
            let value = if self.peek() == Some(b'"') {
                self.quoted_string()?
            } else {
                self.token("a parameter value")?
            };
            if challenge.params.iter().any(|(seen, _)| *seen == name) {
                return Err(ChallengeError::DuplicateParam { name });
            }
            challenge.params.push((name, value));
            // Another parameter of this challenge follows only as `, name=`.
            let after_value = self.at;
            self.skip_list_separators();
            if self
                .bytes
                .get(after_value..self.at)
                .is_some_and(|s| s.contains(&b','))
                && self.is_param_ahead()
            {
                continue;
            }
            self.at = after_value;
            return Ok(challenge);
        }
    }

    /// A quoted string starting at the opening quote, unescaped.
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.at;
        self.at += 1;
        let mut value = String::new();
        let rest = self.text.get(self.at..).unwrap_or_default();
        let mut chars = rest.char_indices();
        while let Some((offset, c)) = chars.next() {
            match c {
                '"' => {
                    self.at += offset + 1;
                    return Ok(value);
                }
                '\\' => match chars.next() {
                    Some((_, escaped)) if is_quotable(escaped) => value.push(escaped),
                    Some((escaped_at, _)) => {
                        self.at += escaped_at;
                        return Err(self.unexpected("a printable character after `\\`"));
                    }
                    None => break,
                },
                c if is_quotable(c) => value.push(c),
                _ => {
                    self.at += offset;
                    return Err(self.unexpected("a printable character in a quoted string"));
                }
            }
        }
        Err(ChallengeError::UnterminatedQuote { offset: open })
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(is_tchar)
}

/// RFC 7235 `token68` characters before the `=` padding.
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_token68(text: &str) -> bool {
    let body = text.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(is_token68_char)
}

/// What a quoted string may hold (qdtext or a quoted-pair): tab, visible ASCII, space,
/// and anything beyond ASCII (obs-text); no other control characters.
fn is_quotable(c: char) -> bool {
    c == '\t' || !c.is_control()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is how a test fails"
    )]

    use super::*;
    use proptest::prelude::*;

    fn challenge(scheme: &str, params: &[(&str, &str)]) -> Challenge {
        Challenge::new(scheme, None, params).unwrap()
    }

    #[test]
    fn parses_what_registries_send() {
        let cases: &[(&str, Vec<Challenge>)] = &[
            (
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io""#,
                vec![challenge(
                    "Bearer",
                    &[
                        ("realm", "https://auth.docker.io/token"),
                        ("service", "registry.docker.io"),
                    ],
                )],
            ),
            (
                // distribution with an insufficient-scope error, as on a repository URL.
                r#"Bearer realm="http://127.0.0.1:3000/token",service="registry.test",scope="repository:team/app:pull",error="insufficient_scope""#,
                vec![challenge(
                    "Bearer",
                    &[
                        ("realm", "http://127.0.0.1:3000/token"),
                        ("service", "registry.test"),
                        ("scope", "repository:team/app:pull"),
                        ("error", "insufficient_scope"),
                    ],
                )],
            ),
            (
                r#"Basic realm="Registry Realm""#,
                vec![challenge("Basic", &[("realm", "Registry Realm")])],
            ),
            (
                // Several challenges, token values, odd spacing, case.
                "Newauth realm=apps, type=1 , title=\"Login to \\\"apps\\\"\", BASIC Realm = simple",
                vec![
                    challenge(
                        "Newauth",
                        &[("realm", "apps"), ("type", "1"), ("title", "Login to \"apps\"")],
                    ),
                    challenge("BASIC", &[("realm", "simple")]),
                ],
            ),
            (
                "Negotiate, Negotiate abc+/==, Bearer realm=\"a,b\"",
                vec![
                    Challenge::new("Negotiate", None, &[]).unwrap(),
                    Challenge::new("Negotiate", Some("abc+/=="), &[]).unwrap(),
                    challenge("Bearer", &[("realm", "a,b")]),
                ],
            ),
            (
                ", ,Bearer realm=\"x\\\\y\" ,,",
                vec![challenge("Bearer", &[("realm", "x\\y")])],
            ),
            (
                "Bearer realm=\"caf\u{e9}\"",
                vec![challenge("Bearer", &[("realm", "caf\u{e9}")])],
            ),
        ];
        for (header, expected) in cases {
            assert_eq!(&parse(header).unwrap(), expected, "{header}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_challenge() {
        let cases: &[(&str, &str)] = &[
            ("", "no challenge"),
            (" , ", "no challenge"),
            ("Bearer realm=\"open", "not closed"),
            ("Bearer realm=\"a\", realm=\"b\"", "given twice"),
            ("Bearer realm=\"a\", REALM=\"b\"", "given twice"),
            ("Bearer realm=;", "expected a parameter value"),
            ("Bearer =x", "token68 or a parameter"),
            (
                "Bearer realm=\"a\" service=\"b\"",
                "comma between challenges",
            ),
            ("Bearer realm=\"a\u{1}\"", "printable character"),
            ("Bearer realm=\"a\\\u{7f}\"", "printable character"),
            ("\"Bearer\"", "auth-scheme"),
            ("Bearer\u{e9}", "a space after the auth-scheme"),
        ];
        for (header, message) in cases {
            let error = parse(header).expect_err(header).to_string();
            assert!(error.contains(message), "{header:?}: {error}");
        }
        // `realm=` alone is a token68 (RFC 7235 grammar), not an empty parameter.
        assert_eq!(parse("Bearer realm=").unwrap()[0].token68(), Some("realm="));
        let long = format!("Bearer realm=\"{}\"", "a".repeat(MAX_HEADER_LEN));
        assert!(matches!(parse(&long), Err(ChallengeError::TooLong { .. })));
    }

    #[test]
    fn several_lines_are_one_list() {
        let lines = ["Basic realm=\"r\"", "Bearer realm=\"t\",service=\"s\""];
        let challenges = parse_lines(lines).unwrap();
        assert_eq!(challenges.len(), 2);
        assert!(challenges[1].is_scheme("bearer"));
        assert_eq!(challenges[1].param("Service"), Some("s"));
    }

    #[test]
    fn new_refuses_what_parse_never_builds() {
        assert!(Challenge::new("Bad Scheme", None, &[]).is_none());
        assert!(Challenge::new("B", Some("a=b"), &[]).is_none());
        assert!(Challenge::new("B", Some("abc"), &[("a", "b")]).is_none());
        assert!(Challenge::new("B", None, &[("a", "1"), ("A", "2")]).is_none());
        assert!(Challenge::new("B", None, &[("a", "\n")]).is_none());
    }

    fn token_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
    }

    fn value_strategy() -> impl Strategy<Value = String> {
        // Printable ASCII including quotes, backslashes and commas, tab, and non-ASCII.
        proptest::collection::vec(
            prop_oneof![
                8 => proptest::char::range(' ', '~'),
                1 => Just('\t'),
                1 => proptest::char::range('\u{a0}', '\u{17f}'),
            ],
            0..24,
        )
        .prop_map(|chars| chars.into_iter().collect())
    }

    fn challenge_strategy() -> impl Strategy<Value = Challenge> {
        let params = proptest::collection::vec((token_strategy(), value_strategy()), 0..5);
        let token68 = "[A-Za-z0-9._~+/-]{1,16}={0,2}";
        prop_oneof![
            (token_strategy(), params).prop_filter_map("distinct names", |(scheme, params)| {
                let borrowed: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                Challenge::new(&scheme, None, &borrowed)
            }),
            (token_strategy(), token68).prop_filter_map("token68", |(scheme, t)| Challenge::new(
                &scheme,
                Some(&t),
                &[]
            )),
        ]
    }

    proptest! {
        #[test]
        fn print_then_parse_is_identity(
            challenges in proptest::collection::vec(challenge_strategy(), 1..5)
        ) {
            let printed = print(&challenges);
            prop_assert_eq!(parse(&printed).unwrap(), challenges, "{}", printed);
        }

        #[test]
        fn never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn whatever_parses_prints_back_to_the_same(
            text in "[A-Za-z=,\" \\\\]{0,40}"
        ) {
            if let Ok(challenges) = parse(&text) {
                prop_assert_eq!(parse(&print(&challenges)).unwrap(), challenges);
            }
        }
    }
}
