//! Shell patterns as docker_auth matches them (Go's `path.Match`): `*` is any run of
//! characters other than `/` (so it never crosses a path separator), `?` one character
//! other than `/`, `[...]` a character class (`[^...]` negated, `a-z` ranges), `\c`
//! the character `c`. The whole text must match. A malformed pattern matches nothing,
//! as docker_auth treats its error.

/// Whether `pattern` matches all of `text`.
pub fn matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    matches_from(&pattern, &text) == Some(true)
}

/// `Some(matched)`, or `None` for a malformed pattern.
fn matches_from(pattern: &[char], text: &[char]) -> Option<bool> {
    let Some((&first, rest)) = pattern.split_first() else {
        return Some(text.is_empty());
    };
    match first {
        '*' => {
            let rest = trim_stars(rest);
            // Try every run of non-separators, shortest first.
            let mut taken = 0;
            loop {
                if matches_from(rest, &text[taken..])? {
                    return Some(true);
                }
                if taken == text.len() || text[taken] == '/' {
                    // The rest must still be well-formed for the verdict to stand.
                    return check_well_formed(rest).map(|()| false);
                }
                taken += 1;
            }
        }
        '?' => match text.split_first() {
            Some((&c, text_rest)) if c != '/' => matches_from(rest, text_rest),
            _ => check_well_formed(rest).map(|()| false),
        },
        '[' => {
            let (class, after) = parse_class(rest)?;
            match text.split_first() {
                Some((&c, text_rest)) if c != '/' && class.contains(c) => {
                    matches_from(after, text_rest)
                }
                _ => check_well_formed(after).map(|()| false),
            }
        }
        '\\' => {
            let (&escaped, after) = rest.split_first()?;
            match text.split_first() {
                Some((&c, text_rest)) if c == escaped => matches_from(after, text_rest),
                _ => check_well_formed(after).map(|()| false),
            }
        }
        literal => match text.split_first() {
            Some((&c, text_rest)) if c == literal => matches_from(rest, text_rest),
            _ => check_well_formed(rest).map(|()| false),
        },
    }
}

fn trim_stars(pattern: &[char]) -> &[char] {
    let skip = pattern.iter().take_while(|&&c| c == '*').count();
    &pattern[skip..]
}

/// `Some(())` when the rest of a pattern parses (Go reports a malformed pattern even
/// after a mismatch).
fn check_well_formed(mut pattern: &[char]) -> Option<()> {
    while let Some((&first, rest)) = pattern.split_first() {
        pattern = match first {
            '[' => parse_class(rest)?.1,
            '\\' => rest.split_first()?.1,
            _ => rest,
        };
    }
    Some(())
}

struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn contains(&self, c: char) -> bool {
        self.ranges.iter().any(|&(low, high)| low <= c && c <= high) != self.negated
    }
}

/// Parses a class after its `[`: the class and what follows its `]`.
fn parse_class(mut pattern: &[char]) -> Option<(Class, &[char])> {
    let negated = pattern.first() == Some(&'^');
    if negated {
        pattern = &pattern[1..];
    }
    let mut ranges = Vec::new();
    loop {
        let (&c, rest) = pattern.split_first()?;
        if c == ']' && !ranges.is_empty() {
            return Some((Class { negated, ranges }, rest));
        }
        let (low, rest) = class_char(pattern)?;
        let (high, rest) = match rest.split_first() {
            Some((&'-', after)) => class_char(after)?,
            _ => (low, rest),
        };
        if high < low {
            return None;
        }
        ranges.push((low, high));
        pattern = rest;
    }
}

fn class_char(pattern: &[char]) -> Option<(char, &[char])> {
    match pattern.split_first()? {
        (&'\\', rest) => rest.split_first().map(|(&c, rest)| (c, rest)),
        (&c, _) if c == '-' || c == ']' => None,
        (&c, rest) => Some((c, rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_patterns_match_as_go_path_match_does() {
        let cases = [
            ("test-*", "test-app", true),
            ("test-*", "test-", true),
            ("test-*", "test-app/web", false),
            ("alice/*", "alice/app", true),
            ("alice/*", "alice/app/web", false),
            ("alice/*", "alice", false),
            ("*", "a/b", false),
            ("**", "ab", true),
            ("**", "a/b", false),
            ("a?c", "abc", true),
            ("a?c", "a/c", false),
            ("[ab]x", "bx", true),
            ("[^ab]x", "bx", false),
            ("[a-c]x", "cx", true),
            ("a\\*", "a*", true),
            ("a\\*", "ab", false),
            ("hello-world", "hello-world", true),
            ("hello-world", "hello-worlds", false),
            ("", "", true),
            ("", "a", false),
            // Malformed patterns match nothing, even where the prefix fails first.
            ("a[", "a[", false),
            ("b[", "a", false),
            ("a\\", "a", false),
            ("[]a]", "a", false),
        ];
        for (pattern, text, expected) in cases {
            assert_eq!(matches(pattern, text), expected, "{pattern} ~ {text}");
        }
    }
}
