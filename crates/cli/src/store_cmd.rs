//! `scopegate store export|import`: a backup of every durable record of a
//! running scopegate, as JSON lines, and the way back in, through the admin
//! API (`/admin/store/export`, `/admin/store/import`), so a store can be
//! saved, restored, or moved to another backend (SQLite to Redis).
//!
//! A line is `{"key": "user/alice", "record": {...}}`. The file holds
//! password hashes and token digests: `--output` writes it with mode 0600.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Sends one admin request: method, path under `/admin/`, optional JSON
/// body; the server's JSON answer, or an error carrying its message.
pub type Call<'a> = dyn Fn(&str, &str, Option<Value>) -> Result<Value> + 'a;

/// Records per export page (the server's maximum).
const PAGE: usize = 500;
/// Largest import request body sent, below the admin API's 64 KiB limit.
const MAX_BATCH_BYTES: usize = 60 * 1024;
/// The record version this CLI knows; the server checks again.
const VERSION: u64 = 1;

/// `scopegate store ...`
#[derive(Debug, clap::Subcommand)]
pub enum StoreCommand {
    /// Write every durable record (users, API-token and refresh-token
    /// digests) as JSON lines; never lockout counters or password markers.
    Export {
        /// Also export the cached OIDC issuer keys (they are fetched again
        /// when missing).
        #[arg(long)]
        oidc_keys: bool,
        /// Write to this file (mode 0600) instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Write the records of an export back. Every line is checked before
    /// anything is sent; records the store already holds are left alone,
    /// so importing a file twice changes nothing the second time.
    Import {
        /// A file written by `scopegate store export`.
        file: std::path::PathBuf,
    },
}

/// Runs a store command with `call` as the admin client.
pub fn run(command: &StoreCommand, call: &Call<'_>) -> Result<()> {
    match command {
        StoreCommand::Export { oidc_keys, output } => {
            let lines = export(call, *oidc_keys)?;
            let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
            match output {
                Some(path) => crate::private_files::write_private(path, text.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))?,
                None => std::io::stdout()
                    .lock()
                    .write_all(text.as_bytes())
                    .context("writing standard output")?,
            }
            eprintln!("exported {}", summary(&lines));
            Ok(())
        }
        StoreCommand::Import { file } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let entries = parse_export(file, &text)?;
            let counts = import(call, &entries)?;
            println!(
                "imported {} records: {} written, {} replaced, {} unchanged",
                entries.len(),
                counts["written"],
                counts["replaced"],
                counts["unchanged"]
            );
            Ok(())
        }
    }
}

/// Every record, page by page, each as one JSON line.
fn export(call: &Call<'_>, oidc_keys: bool) -> Result<Vec<Value>> {
    let mut lines = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let mut query = form_urlencoded::Serializer::new(String::new());
        query.append_pair("limit", &PAGE.to_string());
        if oidc_keys {
            query.append_pair("oidc_keys", "true");
        }
        if let Some(after) = &after {
            query.append_pair("after", after);
        }
        let page = call("GET", &format!("store/export?{}", query.finish()), None)?;
        let Some(records) = page["records"].as_array() else {
            bail!("the server's export page has no records list: {page}");
        };
        lines.extend(records.iter().cloned());
        match page["next"].as_str() {
            Some(next) if after.as_deref() != Some(next) => after = Some(next.to_string()),
            Some(next) => bail!("the server's export does not advance past {next}"),
            None => return Ok(lines),
        }
    }
}

/// The lines of an export, each checked: JSON, a `key`, and a `record`
/// of the known version. Every problem is reported, with its line number,
/// before anything is sent.
pub fn parse_export(file: &Path, text: &str) -> Result<Vec<Value>> {
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = format!("{}:{}", file.display(), index + 1);
        let entry: Value = match serde_json::from_str(line) {
            Ok(entry) => entry,
            Err(error) => {
                problems.push(format!("{at}: not JSON: {error}"));
                continue;
            }
        };
        let key = entry["key"].as_str();
        let version = entry["record"]["v"].as_u64();
        match (key, version) {
            (None, _) => problems.push(format!("{at}: no \"key\"")),
            (Some(key), None) => problems.push(format!("{at}: {key}: no record version")),
            (Some(key), Some(v)) if v != VERSION => problems.push(format!(
                "{at}: {key}: record version {v} is not supported (expects {VERSION})"
            )),
            (Some(key), Some(_)) if line.len() > MAX_BATCH_BYTES => problems.push(format!(
                "{at}: {key}: larger than one import request may carry ({MAX_BATCH_BYTES} bytes)"
            )),
            (Some(_), Some(_)) => entries.push(entry),
        }
    }
    if !problems.is_empty() {
        bail!("nothing imported:\n{}", problems.join("\n"));
    }
    Ok(entries)
}

/// Sends `entries` in batches under the body limit and adds up the counts.
/// The server checks each batch whole; a refused batch stops the import
/// (the batches before it are written: importing again is safe).
fn import(call: &Call<'_>, entries: &[Value]) -> Result<BTreeMap<&'static str, u64>> {
    let mut counts: BTreeMap<&'static str, u64> =
        [("written", 0), ("replaced", 0), ("unchanged", 0)].into();
    let mut batch: Vec<&Value> = Vec::new();
    let mut size = 0;
    let mut sent = 0;
    for (index, entry) in entries.iter().enumerate() {
        let length = entry.to_string().len() + 1;
        if !batch.is_empty() && size + length > MAX_BATCH_BYTES {
            send(call, &batch, sent, &mut counts)?;
            sent += batch.len();
            batch.clear();
            size = 0;
        }
        batch.push(entry);
        size += length;
        if index + 1 == entries.len() {
            send(call, &batch, sent, &mut counts)?;
        }
    }
    Ok(counts)
}

fn send(
    call: &Call<'_>,
    batch: &[&Value],
    sent: usize,
    counts: &mut BTreeMap<&'static str, u64>,
) -> Result<()> {
    let answer =
        call("POST", "store/import", Some(json!({ "records": batch }))).with_context(|| {
            format!(
                "importing records {} to {} (the {sent} before them are written)",
                sent + 1,
                sent + batch.len()
            )
        })?;
    for (name, count) in counts.iter_mut() {
        *count += answer[*name].as_u64().unwrap_or(0);
    }
    Ok(())
}

/// `N records (users U, api tokens T, ...)` by key prefix.
fn summary(lines: &[Value]) -> String {
    let mut by_kind: BTreeMap<String, usize> = BTreeMap::new();
    for line in lines {
        let kind = line["key"]
            .as_str()
            .and_then(|key| key.split_once('/'))
            .map_or("?", |(kind, _)| kind);
        *by_kind.entry(kind.to_string()).or_default() += 1;
    }
    let parts: Vec<String> = by_kind
        .iter()
        .map(|(kind, count)| format!("{kind} {count}"))
        .collect();
    format!("{} records ({})", lines.len(), parts.join(", "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let text = concat!(
            "{\"key\":\"user/a\",\"record\":{\"v\":1}}\n",
            "not json\n",
            "\n",
            "{\"record\":{\"v\":1}}\n",
            "{\"key\":\"user/b\",\"record\":{\"v\":2}}\n",
            "{\"key\":\"user/c\",\"record\":{}}\n",
        );
        let error = parse_export(Path::new("backup.jsonl"), text)
            .unwrap_err()
            .to_string();
        for expected in [
            "backup.jsonl:2: not JSON",
            "backup.jsonl:4: no \"key\"",
            "backup.jsonl:5: user/b: record version 2",
            "backup.jsonl:6: user/c: no record version",
        ] {
            assert!(error.contains(expected), "{expected}: {error}");
        }
        assert!(!error.contains(":1:"), "{error}");
    }

    #[test]
    fn imports_go_in_batches_under_the_body_limit_and_counts_add_up() {
        let record = json!({"v": 1, "password": "x".repeat(1000)});
        let entries: Vec<Value> = (0..150)
            .map(|n| json!({"key": format!("user/u{n}"), "record": record}))
            .collect();
        let bodies = RefCell::new(Vec::new());
        let call = |method: &str, path: &str, body: Option<Value>| -> Result<Value> {
            assert_eq!((method, path), ("POST", "store/import"));
            let body = body.unwrap();
            let count = body["records"].as_array().unwrap().len() as u64;
            bodies.borrow_mut().push(body.to_string().len());
            Ok(json!({"written": count, "replaced": 0, "unchanged": 1}))
        };
        let counts = import(&call, &entries).unwrap();
        assert_eq!(counts["written"], 150);
        let bodies = bodies.into_inner();
        assert!(bodies.len() >= 3, "{bodies:?}");
        assert!(bodies.iter().all(|size| *size < 64 * 1024), "{bodies:?}");
        assert_eq!(counts["unchanged"], bodies.len() as u64);
    }

    #[test]
    fn export_follows_next_until_the_last_page() {
        let asked = RefCell::new(Vec::new());
        let call = |_: &str, path: &str, _: Option<Value>| -> Result<Value> {
            asked.borrow_mut().push(path.to_string());
            Ok(if path.contains("after=user%2Fa") {
                json!({"records": [{"key": "user/b", "record": {"v": 1}}], "next": null})
            } else {
                json!({"records": [{"key": "user/a", "record": {"v": 1}}], "next": "user/a"})
            })
        };
        let lines = export(&call, false).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(asked.borrow().len(), 2);
        assert_eq!(summary(&lines), "2 records (user 2)");
    }
}
