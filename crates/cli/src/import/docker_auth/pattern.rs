//! Repository name sets the translator reasons about: scopegate name patterns
//! (`/`-separated segments, each a literal, a literal with `*` inside, `*` for one
//! segment or `**` for any number), built from docker_auth's shell patterns and
//! `/regex/` values when a policy pattern says exactly the same set of valid names, and
//! compared with each other (does one hold the other, can both match one name).
//!
//! Exactness is judged over valid repository names only: lowercase components joined
//! by `/` (a `host:port/` prefix aside), so a pattern that only an invalid name could
//! match stands for nothing.

use std::fmt;

use regex_syntax::hir::{Class, Hir, HirKind, Look};
use scopegate_policy::ScopeLimit;

/// One segment of a name pattern.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Segment {
    Literal(String),
    /// A literal with `*` inside (`test-*`): any characters within the segment.
    Glob(String),
    /// `*`: any one segment.
    Star,
    /// `**`: any number of segments, none included.
    Any,
    /// `{account}`: the caller's own name, only in what the translator writes (see
    /// [`NamePattern::with_account`]); never compared.
    Account,
}

/// A name pattern, printed in scopegate's syntax.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NamePattern {
    segments: Vec<Segment>,
}

/// Characters of valid names (a `host:port` prefix with capitals stands for nothing here).
fn is_name_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/' | ':')
}

/// A character no valid name ends a component with, so `L.+` and `L.*` agree on
/// valid names when `L` ends with it.
fn is_separator(c: char) -> bool {
    matches!(c, '/' | '.' | '_' | '-')
}

impl NamePattern {
    /// `**`: every name.
    pub fn everything() -> NamePattern {
        NamePattern {
            segments: vec![Segment::Any],
        }
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The pattern a rule for `account` alone writes: a leading literal equal to the
    /// account becomes `{account}`, which matches the same for that caller. The admin
    /// API refuses to create a user named like a leading literal of the policy (who
    /// would own that namespace through `{account}/**`), so `carol/*` for user carol
    /// must not be written as a literal.
    pub fn with_account(&self, account: &str) -> NamePattern {
        let mut segments = self.segments.clone();
        if let Some(first) = segments.first_mut() {
            if *first == Segment::Literal(account.to_string()) && !account.is_empty() {
                *first = Segment::Account;
            }
        }
        NamePattern { segments }
    }

    /// The pattern for a docker_auth shell pattern (`*` within a segment): `Ok(None)`
    /// when it matches no valid name, `Err(why)` when no policy pattern says the same.
    pub fn from_glob(glob: &str) -> Result<Option<NamePattern>, String> {
        // Each segment as characters, `None` standing for a run of `*`.
        let mut parts: Vec<Vec<Option<char>>> = Vec::new();
        let mut current: Vec<Option<char>> = Vec::new();
        let mut chars = glob.chars();
        while let Some(c) = chars.next() {
            match c {
                '?' => {
                    return Err(format!(
                        "{glob:?}: `?` (one character) has no equivalent in policy patterns"
                    ))
                }
                '[' => {
                    return Err(format!(
                        "{glob:?}: character classes (`[...]`) have no equivalent in policy \
                         patterns"
                    ))
                }
                '/' => parts.push(std::mem::take(&mut current)),
                '*' if current.last() == Some(&None) => {}
                '*' => current.push(None),
                // A trailing `\` is malformed: docker_auth matches nothing with it.
                '\\' => match chars.next() {
                    Some(escaped) => current.push(Some(escaped)),
                    None => return Ok(None),
                },
                other => current.push(Some(other)),
            }
        }
        parts.push(current);
        let mut segments = Vec::new();
        for part in parts {
            let starts_with_separator = matches!(part.first(), Some(Some(c)) if is_separator(*c));
            let ends_with_separator = matches!(part.last(), Some(Some(c)) if is_separator(*c));
            if part.is_empty()
                || starts_with_separator
                || ends_with_separator
                || part
                    .iter()
                    .flatten()
                    .any(|c| !is_name_char(*c) || *c == '/')
            {
                // No valid name component starts or ends with `.`, `_` or `-`.
                return Ok(None);
            }
            segments.push(match part.as_slice() {
                [None] => Segment::Star,
                _ if part.contains(&None) => {
                    Segment::Glob(part.iter().map(|c| c.unwrap_or('*')).collect())
                }
                _ => Segment::Literal(part.iter().flatten().collect()),
            });
        }
        NamePattern { segments }.checked(glob).map(Some)
    }

    /// The patterns whose union is the set of valid names a docker_auth `/regex/`
    /// (its body, unanchored as docker_auth searches) matches; empty when it matches
    /// none. `Err(why)` when policy patterns cannot say that set exactly. Understood:
    /// literals, `^`, `$`, `.*` and `.+` (or any class holding every name character),
    /// groups and alternations of those, as `^L$`, `^L.*`, `.*L$` or `.*`.
    pub fn from_regex(body: &str) -> Result<Vec<NamePattern>, String> {
        let shown = format!("/{body}/");
        let hir = regex_syntax::Parser::new()
            .parse(body)
            .map_err(|error| format!("{shown}: {error}"))?;
        let alternatives = expand(&hir).map_err(|why| format!("{shown}: {why}"))?;
        let mut patterns = Vec::new();
        for pieces in alternatives {
            if let Some(pattern) = from_pieces(&pieces).map_err(|why| format!("{shown}: {why}"))? {
                let pattern = pattern.checked(&shown)?;
                if !patterns.contains(&pattern) {
                    patterns.push(pattern);
                }
            }
        }
        Ok(patterns)
    }

    /// The pattern itself if scopegate's policy accepts it.
    fn checked(self, source: &str) -> Result<NamePattern, String> {
        match format!("repository:{self}:pull").parse::<ScopeLimit>() {
            Ok(_) => Ok(self),
            Err(error) => Err(format!(
                "{source:?} becomes the policy pattern {self:?}, which is not valid: {error}",
                self = self.to_string()
            )),
        }
    }

    /// Whether every name this pattern matches, `other` matches too. May answer `false`
    /// for some patterns that are held (the translator then does more, never less).
    pub fn is_within(&self, other: &NamePattern) -> bool {
        within(&self.segments, &other.segments)
    }

    /// Whether some name could match both. May answer `true` where only invalid names
    /// do (never `false` where a valid name matches both).
    pub fn intersects(&self, other: &NamePattern) -> bool {
        intersect(&self.segments, &other.segments)
    }
}

impl fmt::Display for NamePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            match segment {
                Segment::Literal(text) | Segment::Glob(text) => f.write_str(text)?,
                Segment::Star => f.write_str("*")?,
                Segment::Any => f.write_str("**")?,
                Segment::Account => f.write_str("{account}")?,
            }
        }
        Ok(())
    }
}

/// A regex flattened into a sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Piece {
    Start,
    End,
    Char(char),
    /// `.*`
    AnyRun,
    /// `.+`
    AnyNonEmpty,
}

/// Alternatives beyond this many are refused rather than multiplied out.
const MAX_ALTERNATIVES: usize = 64;

/// The regex as alternative piece sequences.
fn expand(hir: &Hir) -> Result<Vec<Vec<Piece>>, String> {
    match hir.kind() {
        HirKind::Empty => Ok(vec![Vec::new()]),
        HirKind::Literal(literal) => {
            let text = std::str::from_utf8(&literal.0).map_err(|_| "a non-UTF-8 literal")?;
            Ok(vec![text.chars().map(Piece::Char).collect()])
        }
        HirKind::Class(class) => match single_char(class) {
            Some(c) => Ok(vec![vec![Piece::Char(c)]]),
            None => Err(
                "a character class or `.` outside `.*`/`.+` has no equivalent in policy patterns"
                    .into(),
            ),
        },
        HirKind::Look(Look::Start) => Ok(vec![vec![Piece::Start]]),
        HirKind::Look(Look::End) => Ok(vec![vec![Piece::End]]),
        HirKind::Look(_) => Err("only the anchors ^ and $ are understood".into()),
        HirKind::Repetition(repetition) => {
            let is_any = matches!(repetition.sub.kind(), HirKind::Class(class) if holds_every_name_char(class));
            match (is_any, repetition.min, repetition.max) {
                (true, 0, None) => Ok(vec![vec![Piece::AnyRun]]),
                (true, 1, None) => Ok(vec![vec![Piece::AnyNonEmpty]]),
                _ => Err(
                    "repetitions other than `.*` and `.+` have no equivalent in policy patterns"
                        .into(),
                ),
            }
        }
        HirKind::Capture(capture) => expand(&capture.sub),
        HirKind::Concat(parts) => {
            let mut product: Vec<Vec<Piece>> = vec![Vec::new()];
            for part in parts {
                let alternatives = expand(part)?;
                if product.len() * alternatives.len() > MAX_ALTERNATIVES {
                    return Err(format!("more than {MAX_ALTERNATIVES} alternatives"));
                }
                product = product
                    .iter()
                    .flat_map(|prefix| {
                        alternatives.iter().map(move |alternative| {
                            prefix.iter().chain(alternative).copied().collect()
                        })
                    })
                    .collect();
            }
            Ok(product)
        }
        HirKind::Alternation(parts) => {
            let mut all = Vec::new();
            for part in parts {
                all.extend(expand(part)?);
                if all.len() > MAX_ALTERNATIVES {
                    return Err(format!("more than {MAX_ALTERNATIVES} alternatives"));
                }
            }
            Ok(all)
        }
    }
}

/// The one character a class holds, if it holds exactly one.
fn single_char(class: &Class) -> Option<char> {
    match class {
        Class::Unicode(unicode) => match unicode.ranges() {
            [range] if range.start() == range.end() => Some(range.start()),
            _ => None,
        },
        Class::Bytes(bytes) => match bytes.ranges() {
            [range] if range.start() == range.end() && range.start().is_ascii() => {
                Some(char::from(range.start()))
            }
            _ => None,
        },
    }
}

/// Whether a class holds every character a valid name may hold (so it acts as `.` on
/// names).
fn holds_every_name_char(class: &Class) -> bool {
    let name_chars = ('a'..='z')
        .chain('A'..='Z')
        .chain('0'..='9')
        .chain(['.', '_', '-', '/', ':']);
    match class {
        Class::Unicode(unicode) => {
            let ranges = unicode.ranges();
            name_chars
                .into_iter()
                .all(|c| ranges.iter().any(|r| r.start() <= c && c <= r.end()))
        }
        Class::Bytes(bytes) => {
            let ranges = bytes.ranges();
            name_chars.into_iter().all(|c| {
                let b = c as u8;
                ranges.iter().any(|r| r.start() <= b && b <= r.end())
            })
        }
    }
}

/// One alternative as a pattern: `None` when it matches no valid name.
fn from_pieces(pieces: &[Piece]) -> Result<Option<NamePattern>, String> {
    let mut pieces: Vec<Piece> = pieces.to_vec();
    let is_anchored_start = pieces.first() == Some(&Piece::Start);
    if is_anchored_start {
        pieces.remove(0);
    }
    let is_anchored_end = pieces.last() == Some(&Piece::End);
    if is_anchored_end {
        pieces.pop();
    }
    if pieces
        .iter()
        .any(|p| matches!(p, Piece::Start | Piece::End))
    {
        // An anchor in the middle: matches only where the text around it is empty.
        return Err("anchors (^, $) are understood only at the start and the end".into());
    }
    if !is_anchored_start {
        pieces.insert(0, Piece::AnyRun);
    }
    if !is_anchored_end {
        pieces.push(Piece::AnyRun);
    }
    // Split into literal runs around the wildcards, merging adjacent wildcards.
    let mut literals: Vec<String> = vec![String::new()];
    let mut wildcards: Vec<Piece> = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Char(c) => {
                if let Some(literal) = literals.last_mut() {
                    literal.push(c);
                }
            }
            wildcard => {
                let merges = literals.last().is_some_and(String::is_empty) && !wildcards.is_empty();
                if merges {
                    let last = wildcards.len() - 1;
                    if wildcard == Piece::AnyNonEmpty {
                        wildcards[last] = Piece::AnyNonEmpty;
                    }
                } else {
                    wildcards.push(wildcard);
                    literals.push(String::new());
                }
            }
        }
    }
    if literals.iter().any(|l| l.chars().any(|c| !is_name_char(c))) {
        return Ok(None);
    }
    // A name starts with a component, and no component starts with `.`, `_` or `-`.
    if is_anchored_start
        && literals[0]
            .chars()
            .next()
            .is_some_and(|c| c != '/' && is_separator(c))
    {
        return Ok(None);
    }
    let literal_pattern = |text: &str| -> Option<Vec<Segment>> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(
            parts
                .iter()
                .map(|p| Segment::Literal(p.to_string()))
                .collect(),
        )
    };
    match (wildcards.as_slice(), literals.as_slice()) {
        // ^L$
        ([], [literal]) => Ok(literal_pattern(literal).map(|segments| NamePattern { segments })),
        // ^L.* or ^L.+ (the latter where no valid name equals L), and .*/.+ alone.
        ([wildcard], [prefix, suffix]) if suffix.is_empty() => {
            let is_same_as_run = *wildcard == Piece::AnyRun
                || prefix.is_empty()
                || prefix.chars().last().is_some_and(is_separator);
            if !is_same_as_run {
                return Err(format!(
                    "`{prefix}.+` (names starting with {prefix:?}, {prefix:?} itself excluded) has no \
                     equivalent in policy patterns"
                ));
            }
            if prefix.is_empty() {
                return Ok(Some(NamePattern::everything()));
            }
            let parts: Vec<&str> = prefix.split('/').collect();
            let mut segments = Vec::new();
            for (i, part) in parts.iter().enumerate() {
                if i + 1 == parts.len() {
                    segments.push(if part.is_empty() {
                        Segment::Star
                    } else {
                        Segment::Glob(format!("{part}*"))
                    });
                } else if part.is_empty() {
                    return Ok(None);
                } else {
                    segments.push(Segment::Literal(part.to_string()));
                }
            }
            segments.push(Segment::Any);
            Ok(Some(NamePattern { segments }))
        }
        // .*L$
        ([Piece::AnyRun], [prefix, suffix]) if prefix.is_empty() => {
            let parts: Vec<&str> = suffix.split('/').collect();
            let mut segments = vec![Segment::Any];
            for (i, part) in parts.iter().enumerate() {
                if i == 0 {
                    segments.push(if part.is_empty() {
                        Segment::Star
                    } else {
                        Segment::Glob(format!("*{part}"))
                    });
                } else if part.is_empty() {
                    return Ok(None);
                } else {
                    segments.push(Segment::Literal(part.to_string()));
                }
            }
            Ok(Some(NamePattern { segments }))
        }
        _ => Err(
            "only ^NAME$, ^PREFIX.*, .*SUFFIX$ and .* have equivalents in policy patterns \
             (an unanchored regex matches names containing it anywhere)"
                .into(),
        ),
    }
}

/// `*`-only glob matching within one segment.
fn glob_matches(glob: &str, text: &str) -> bool {
    fn walk(glob: &[u8], text: &[u8]) -> bool {
        match glob.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|skip| walk(rest, &text[skip..])),
            Some((c, rest)) => text.first() == Some(c) && walk(rest, &text[1..]),
        }
    }
    walk(glob.as_bytes(), text.as_bytes())
}

/// A glob's literal text before its first `*` and after its last.
fn glob_ends(glob: &str) -> (&str, &str) {
    let prefix = glob.split('*').next().unwrap_or_default();
    let suffix = glob.rsplit('*').next().unwrap_or_default();
    (prefix, suffix)
}

/// Whether one segment's names are all names of another (may answer `false` for some
/// that are).
fn segment_within(inner: &Segment, outer: &Segment) -> bool {
    match (inner, outer) {
        (_, Segment::Any)
        | (Segment::Literal(_) | Segment::Glob(_) | Segment::Star, Segment::Star) => true,
        (Segment::Literal(a), Segment::Literal(b)) => a == b,
        (Segment::Account, Segment::Account) => true,
        (Segment::Literal(a), Segment::Glob(g)) => glob_matches(g, a),
        (Segment::Glob(a), Segment::Glob(b)) => {
            let (prefix, suffix) = glob_ends(b);
            let (inner_prefix, inner_suffix) = glob_ends(a);
            a == b
                || (b.matches('*').count() == 1
                    && inner_prefix.starts_with(prefix)
                    && inner_suffix.ends_with(suffix))
        }
        _ => false,
    }
}

/// Whether two single segments can match one name segment (never `false` when they can).
fn segments_meet(a: &Segment, b: &Segment) -> bool {
    match (a, b) {
        (Segment::Star, _) | (_, Segment::Star) | (Segment::Any, _) | (_, Segment::Any) => true,
        // Stands for a literal the caller's name decides: it may be anything.
        (Segment::Account, _) | (_, Segment::Account) => true,
        (Segment::Literal(x), Segment::Literal(y)) => x == y,
        (Segment::Literal(x), Segment::Glob(g)) | (Segment::Glob(g), Segment::Literal(x)) => {
            glob_matches(g, x)
        }
        (Segment::Glob(x), Segment::Glob(y)) => {
            let (xp, xs) = glob_ends(x);
            let (yp, ys) = glob_ends(y);
            (xp.starts_with(yp) || yp.starts_with(xp)) && (xs.ends_with(ys) || ys.ends_with(xs))
        }
    }
}

fn within(inner: &[Segment], outer: &[Segment]) -> bool {
    match (inner.split_first(), outer.split_first()) {
        (_, Some((Segment::Any, outer_rest))) => {
            within(inner, outer_rest) || (!inner.is_empty() && within(&inner[1..], outer))
        }
        (None, None) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((Segment::Any, _)), Some(_)) => false,
        (Some((first, inner_rest)), Some((outer_first, outer_rest))) => {
            segment_within(first, outer_first) && within(inner_rest, outer_rest)
        }
    }
}

fn intersect(a: &[Segment], b: &[Segment]) -> bool {
    if a.is_empty() && b.is_empty() {
        return true;
    }
    if let Some((Segment::Any, a_rest)) = a.split_first() {
        if intersect(a_rest, b) || (!b.is_empty() && intersect(a, &b[1..])) {
            return true;
        }
    }
    if let Some((Segment::Any, b_rest)) = b.split_first() {
        if intersect(a, b_rest) || (!a.is_empty() && intersect(&a[1..], b)) {
            return true;
        }
    }
    match (a.split_first(), b.split_first()) {
        (Some((x, a_rest)), Some((y, b_rest))) if *x != Segment::Any && *y != Segment::Any => {
            segments_meet(x, y) && intersect(a_rest, b_rest)
        }
        _ => false,
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests: a panic is how a test fails"
)]
mod tests {
    use super::*;

    fn shown(patterns: &[NamePattern]) -> Vec<String> {
        patterns.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn shell_patterns_become_patterns_within_segments() {
        let cases = [
            ("test-*", Ok(Some("test-*"))),
            ("alice/*", Ok(Some("alice/*"))),
            ("team/**", Ok(Some("team/*"))),
            ("*", Ok(Some("*"))),
            ("hello-world", Ok(Some("hello-world"))),
            ("a\\.b", Ok(Some("a.b"))),
            ("Upper/*", Ok(None)),
            ("${labels:group}/*", Ok(None)),
            ("/x", Ok(None)),
            ("-*", Ok(None)),
            ("a-/*", Ok(None)),
            ("a?", Err("`?`")),
            ("[ab]", Err("character classes")),
        ];
        for (glob, expected) in cases {
            let actual = NamePattern::from_glob(glob).map(|p| p.map(|p| p.to_string()));
            match (actual, expected) {
                (Ok(actual), Ok(expected)) => {
                    assert_eq!(actual.as_deref(), expected, "{glob}")
                }
                (Err(error), Err(expected)) => assert!(error.contains(expected), "{glob}: {error}"),
                (actual, expected) => panic!("{glob}: {actual:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn regexes_become_patterns_when_they_say_the_same() {
        let cases: &[(&str, Result<&[&str], &str>)] = &[
            (".+", Ok(&["**"])),
            (".*", Ok(&["**"])),
            ("^$", Ok(&[])),
            ("^hello-world$", Ok(&["hello-world"])),
            ("^(web|api)$", Ok(&["web", "api"])),
            ("^builds\\/.*$", Ok(&["builds/*/**"])),
            ("^builds/.+", Ok(&["builds/*/**"])),
            ("^team-", Ok(&["team-*/**"])),
            ("^team-.*$", Ok(&["team-*/**"])),
            ("^(team|ops)/", Ok(&["team/*/**", "ops/*/**"])),
            (".*/latest$", Ok(&["**/*/latest"])),
            ("-dev$", Ok(&["**/*-dev"])),
            ("^-.*$", Ok(&[])),
            ("^team.+$", Err("itself excluded")),
            ("dev", Err("unanchored")),
            ("^a.*b$", Err("only ^NAME$")),
            ("^[a-z]+$", Err("repetitions")),
            ("^a.b$", Err("character class")),
            ("(?i)^a$", Err("character class")),
        ];
        for (body, expected) in cases {
            let actual = NamePattern::from_regex(body);
            match (actual, expected) {
                (Ok(actual), Ok(expected)) => assert_eq!(shown(&actual), *expected, "{body}"),
                (Err(error), Err(expected)) => assert!(error.contains(expected), "{body}: {error}"),
                (actual, expected) => panic!("{body}: {actual:?}, expected {expected:?}"),
            }
        }
    }

    /// A pattern in policy syntax, as the translator prints them.
    fn parsed(text: &str) -> NamePattern {
        let segments = text
            .split('/')
            .map(|part| match part {
                "**" => Segment::Any,
                "*" => Segment::Star,
                glob if glob.contains('*') => Segment::Glob(glob.to_string()),
                literal => Segment::Literal(literal.to_string()),
            })
            .collect();
        NamePattern { segments }
    }

    #[test]
    fn containment_and_overlap() {
        // (a, b, a within b, a and b overlap)
        let cases = [
            ("test-*", "**", true, true),
            ("**", "test-*", false, true),
            ("test-*", "*", true, true),
            ("test-app", "test-*", true, true),
            ("test-*", "test-app", false, true),
            ("alice/*", "bob/*", false, false),
            ("alice/*", "alice/app", false, true),
            ("alice/*", "*/app", false, true),
            ("test-*", "*-dev", false, true),
            ("test-*", "prod-*", false, false),
            ("hello-world", "alice/*", false, false),
            ("team/*/**", "team/app", false, true),
            ("team/*/**", "team", false, false),
            ("team-*/**", "team-a/b/c", false, true),
            ("team/a/b", "team/*/**", true, true),
        ];
        for (a, b, is_within, meets) in cases {
            let (pa, pb) = (parsed(a), parsed(b));
            assert_eq!(pa.is_within(&pb), is_within, "{a} within {b}");
            assert_eq!(pa.intersects(&pb), meets, "{a} meets {b}");
            assert_eq!(pb.intersects(&pa), meets, "{b} meets {a}");
        }
    }
}
