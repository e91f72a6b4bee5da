//! htpasswd files, as distribution's `htpasswd` auth and Apache read them:
//! one `name:hash` per line. scopegate takes bcrypt hashes (`htpasswd -B`,
//! the only kind distribution accepts) of cost 4 to 12; every other kind is
//! refused with its line number and why, and then nothing is imported.

use scopegate::password::bcrypt;

/// One user of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub name: String,
    pub hash: String,
}

/// The users of an htpasswd file, or every line that cannot be imported,
/// each with its (1-based) line number and why. Blank lines and `#`
/// comments are skipped.
pub fn parse(text: &str) -> Result<Vec<Entry>, Vec<String>> {
    let mut entries: Vec<Entry> = Vec::new();
    let mut problems = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = raw.trim();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let Some((name, hash)) = content.split_once(':') else {
            problems.push(format!("line {line}: not `name:hash`"));
            continue;
        };
        if let Some(earlier) = entries.iter().find(|entry| entry.name == name) {
            problems.push(format!(
                "line {line}: {name} again (first on line {})",
                earlier.line
            ));
            continue;
        }
        match refusal(hash) {
            Some(why) => problems.push(format!("line {line} ({name}): {why}")),
            None => entries.push(Entry {
                line,
                name: name.to_string(),
                hash: hash.to_string(),
            }),
        }
    }
    if problems.is_empty() {
        Ok(entries)
    } else {
        Err(problems)
    }
}

/// Why `hash` cannot be imported, or `None` for a bcrypt hash in the band.
pub(crate) fn refusal(hash: &str) -> Option<String> {
    if bcrypt::is_bcrypt(hash) {
        return bcrypt::check(hash).err();
    }
    let kind = if hash.starts_with("$apr1$") {
        "an Apache MD5 hash ($apr1$, htpasswd -m)"
    } else if hash.starts_with("{SHA}") {
        "a SHA-1 hash ({SHA}, htpasswd -s)"
    } else if hash.starts_with("$5$") || hash.starts_with("$6$") || hash.starts_with("$1$") {
        "a crypt(3) SHA or MD5 hash"
    } else if hash.len() == 13 && !hash.starts_with('$') {
        "a DES crypt hash (htpasswd -d)"
    } else if hash.starts_with("$argon2") {
        return scopegate::password::check_phc(hash).err();
    } else {
        "not a password hash scopegate knows (plain text?)"
    };
    Some(format!(
        "{kind}: only bcrypt (htpasswd -B) is accepted; this user needs a new password \
         (`scopegate user passwd`)"
    ))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    /// `htpasswd -nbB alice alice-password` and `-C 10` (Apache 2.4).
    const ALICE: &str = "alice:$2y$05$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi";
    const GITLAB: &str = "gitlab:$2y$10$0XbauzL.PhPrQg4u657aQOcs9hthQ1ZcDLayhN.OjCWIX4w4ohffS";

    #[test]
    fn bcrypt_lines_become_users_and_comments_are_skipped() {
        let text = format!("# users\n\n{ALICE}\r\n  {GITLAB}  \n");
        let entries = parse(&text).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "alice");
        assert_eq!(entries[0].line, 3);
        assert!(entries[0].hash.starts_with("$2y$05$"));
        assert_eq!(entries[1].name, "gitlab");
        assert_eq!(entries[1].line, 4);
    }

    #[test]
    fn every_unimportable_line_is_named_with_why() {
        let text = [
            ALICE,
            "md5:$apr1$Yp6i0Kk5$Yl0mZ3d6/0yC0lZp9y5eI/",
            "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
            "des:rqXexS6ZhobKA",
            "dear:$2y$13$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi",
            "no-colon",
            "plain:hunter2",
            "alice:$2y$05$Sb7fX/NPr2mnOID/wCY1eeW3hJ/4/yudAXHJvB4f1YUVEq.M/zOBi",
        ]
        .join("\n");
        let problems = parse(&text).unwrap_err();
        let expected = [
            ("line 2 (md5)", "Apache MD5"),
            ("line 3 (sha)", "SHA-1"),
            ("line 4 (des)", "DES crypt"),
            ("line 5 (dear)", "cost 13 is outside 4..=12"),
            ("line 6", "not `name:hash`"),
            ("line 7 (plain)", "plain text"),
            ("line 8", "alice again (first on line 1)"),
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (problem, (start, why)) in problems.iter().zip(expected) {
            assert!(problem.starts_with(start), "{problem}");
            assert!(problem.contains(why), "{problem}");
        }
    }
}
