//! Repository names: the distribution reference grammar.
//!
//! A name is `[host[:port]/]path`, where the path is lowercase components joined by `/`
//! and each component is runs of `[a-z0-9]` joined by `.`, `_`, `__` or one or more `-`.
//! The first component is read as a registry host only when it looks like one (it holds a
//! `.` or a `:`, is `localhost`, or is a bracketed IPv6 address) and the name has a path
//! after it; a host may carry uppercase letters, as the reference grammar allows.

/// Longest name accepted, in bytes (the reference grammar's limit).
pub const MAX_NAME_LEN: usize = 255;

/// Checks a whole repository name; the error is a short reason fit for a 400 message.
pub(crate) fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME_LEN {
        return Err("the name is longer than 255 characters");
    }
    let mut components = name.split('/');
    // `split` always yields at least one item.
    let first = components.next().unwrap_or_default();
    let has_path_after_first = name.contains('/');
    let is_valid_first = is_path_component(first) || has_path_after_first && is_host(first);
    if !is_valid_first {
        return Err(component_reason(first));
    }
    for component in components {
        if !is_path_component(component) {
            return Err(component_reason(component));
        }
    }
    Ok(())
}

/// Why a component failed, worded for the person who sent it.
pub(crate) fn component_reason(component: &str) -> &'static str {
    if component.is_empty() {
        "the name has an empty path component (a leading, trailing or doubled '/')"
    } else if component.bytes().any(|b| b.is_ascii_uppercase()) {
        "the name must be lowercase"
    } else {
        "each path component must be lowercase letters and digits joined by '.', '_', '__' or '-'"
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or `-+`, nothing else.
pub(crate) fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let mut i = 0;
    loop {
        let run_start = i;
        while i < bytes.len() && is_lower_alphanumeric(bytes[i]) {
            i += 1;
        }
        if i == run_start {
            return false;
        }
        if i == bytes.len() {
            return true;
        }
        match bytes[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if bytes.get(i) == Some(&b'_') {
                    i += 1;
                }
            }
            b'-' => {
                while bytes.get(i) == Some(&b'-') {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// A registry host as the first name component: `host[:port]` that looks like a host.
pub(crate) fn is_host(component: &str) -> bool {
    let looks_like_host = component.contains('.')
        || component.contains(':')
        || component == "localhost"
        || component.starts_with('[');
    looks_like_host && is_domain(component)
}

/// `domain-name[:port]` or `[ipv6][:port]` per the reference grammar.
fn is_domain(component: &str) -> bool {
    let (host, port) = if let Some(rest) = component.strip_prefix('[') {
        let Some((address, after)) = rest.split_once(']') else {
            return false;
        };
        let is_address =
            !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if !is_address {
            return false;
        }
        match after {
            "" => return true,
            _ => match after.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match component.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (component, None),
        }
    };
    let is_port_valid = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    let is_host_valid = host.is_empty() && component.starts_with('[')
        || !host.is_empty() && host.split('.').all(is_domain_component);
    is_port_valid && is_host_valid
}

/// `[a-zA-Z0-9]` or `[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`.
fn is_domain_component(label: &str) -> bool {
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        }
        _ => false,
    }
}

fn is_lower_alphanumeric(byte: u8) -> bool {
    byte.is_ascii_lowercase() || byte.is_ascii_digit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: &[(&str, bool)] = &[
            ("app", true),
            ("team/app", true),
            ("a/b/c/d/e", true),
            ("my.app", true),
            ("my_app", true),
            ("my__app", true),
            ("my-app", true),
            ("my---app", true),
            ("my___app", false),
            ("my._app", false),
            ("my..app", false),
            (".app", false),
            ("app.", false),
            ("app-", false),
            ("-app", false),
            ("_app", false),
            ("App", false),
            ("team/App", false),
            ("team//app", false),
            ("/app", false),
            ("app/", false),
            ("", false),
            ("caf\u{e9}", false),
            ("localhost:5000/team/app", true),
            ("localhost/app", true),
            ("registry.example.com/app", true),
            ("Registry.Example.com/app", true),
            ("registry.example.com:443/team/app", true),
            ("[::1]:5000/app", true),
            ("[fe80::1]/app", true),
            ("[zz]/app", false),
            ("localhost:5000", false),
            ("localhost:/app", false),
            ("localhost:50a/app", false),
            ("-bad.example.com/app", false),
            ("Foo/app", false),
            ("a b", false),
        ];
        for (name, expected) in cases {
            assert_eq!(validate_name(name).is_ok(), *expected, "{name:?}");
        }
    }

    #[test]
    fn length_limit() {
        let longest = "a".repeat(MAX_NAME_LEN);
        assert!(validate_name(&longest).is_ok());
        assert!(validate_name(&format!("{longest}a")).is_err());
    }

    #[test]
    fn reasons_name_the_problem() {
        assert_eq!(validate_name("App"), Err("the name must be lowercase"));
        assert!(validate_name("a//b")
            .err()
            .is_some_and(|r| r.contains("empty")));
    }
}
