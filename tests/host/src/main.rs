//! `scopegate-host`: serve a Spin HTTP component like `spin up` would, for
//! benchmarks and manual testing.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use scopegate_testhost::{HostOptions, TestHost};

const USAGE: &str = "\
usage: scopegate-host --wasm FILE [options]

  --wasm FILE                 component to serve (required)
  --listen ADDR               address to listen on (default 127.0.0.1:3000)
  --variable NAME=VALUE       set a Spin variable (repeatable)
  --runtime-config-file FILE  read variables from a Spin runtime config's
  --variables-file FILE         [[variables_provider]] type = \"static\" values
  --key-value KEY=VALUE       seed the default key-value store (repeatable)
  --set-delay-ms N            make every key-value set take N ms (default 0)
  --quiet                     drop component stdout/stderr (default: copy
                                them to this process's stderr)
  --stats-file FILE           while serving, rewrite FILE every 100 ms with
                                JSON statistics: requests, linear memory of
                                one request (largest, and latest), key-value
                                calls

Environment: SCOPEGATE_HOST_PERFMAP=1 writes /tmp/perf-PID.map for perf;
SCOPEGATE_HOST_POOLING=0 turns off the pooling allocator.
";

fn main() {
    if let Err(e) = run() {
        eprintln!("scopegate-host: {e:#}");
        std::process::exit(2);
    }
}

fn run() -> anyhow::Result<()> {
    let mut wasm = None;
    let mut stats_file = None;
    let mut opts = HostOptions::new(PathBuf::new());
    opts.listen = SocketAddr::from(([127, 0, 0, 1], 3000));
    opts.capture_logs = false;
    opts.echo_logs = true;

    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |what: &str| args.next().with_context(|| format!("{arg} needs {what}"));
        match arg.as_str() {
            "--wasm" => wasm = Some(PathBuf::from(value("a file")?)),
            "--listen" => {
                let addr = value("an address")?;
                opts.listen = addr
                    .parse()
                    .with_context(|| format!("bad address {addr:?}"))?;
            }
            "--variable" => {
                let (k, v) = split_pair(&value("NAME=VALUE")?)?;
                opts.variables.insert(k, v);
            }
            "--runtime-config-file" | "--variables-file" => {
                let file = PathBuf::from(value("a file")?);
                opts.variables.extend(read_static_variables(&file)?);
            }
            "--key-value" => {
                let (k, v) = split_pair(&value("KEY=VALUE")?)?;
                opts.kv.insert(k, v.into_bytes());
            }
            "--set-delay-ms" => {
                let ms = value("a number")?;
                let ms: u64 = ms.parse().with_context(|| format!("bad number {ms:?}"))?;
                opts.set_delay = Duration::from_millis(ms);
            }
            "--quiet" => opts.echo_logs = false,
            "--stats-file" => stats_file = Some(PathBuf::from(value("a file")?)),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    opts.wasm = wasm.with_context(|| format!("--wasm is required\n{USAGE}"))?;

    let host = TestHost::start(opts)?;
    println!("Serving {}", host.url("/"));
    loop {
        match &stats_file {
            Some(file) => {
                write_stats(&host, file)?;
                std::thread::sleep(Duration::from_millis(100));
            }
            None => std::thread::park(),
        }
    }
}

/// Replace `file` with the host's statistics as one JSON object (written
/// aside, then renamed, so a reader never sees half of it).
fn write_stats(host: &TestHost, file: &Path) -> anyhow::Result<()> {
    let memory = host.memory_stats();
    let kv = host.kv_stats();
    let json = format!(
        concat!(
            r#"{{"requests":{},"peak_linear_memory_bytes":{},"last_linear_memory_bytes":{},"#,
            r#""kv":{{"gets":{},"sets":{},"deletes":{},"exists":{},"get_keys":{}}}}}"#,
            "\n"
        ),
        memory.requests,
        memory.peak_bytes,
        memory.last_bytes,
        kv.gets,
        kv.sets,
        kv.deletes,
        kv.exists,
        kv.get_keys
    );
    let mut aside = file.as_os_str().to_owned();
    aside.push(".tmp");
    std::fs::write(&aside, json).with_context(|| format!("cannot write {}", file.display()))?;
    std::fs::rename(&aside, file).with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}

fn split_pair(s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("expected NAME=VALUE, got {s:?}"),
    }
}

/// Variables from the static providers of a Spin runtime config file:
///
/// ```toml
/// [[variables_provider]]
/// type = "static"
/// [variables_provider.values]
/// issuer = "registry-token-issuer"
/// ```
fn read_static_variables(file: &PathBuf) -> anyhow::Result<Vec<(String, String)>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let config: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", file.display()))?;
    let mut vars = Vec::new();
    let providers = match config.get("variables_provider") {
        Some(toml::Value::Array(providers)) => providers.as_slice(),
        Some(_) => bail!(
            "{}: variables_provider must be [[variables_provider]]",
            file.display()
        ),
        None => &[],
    };
    for provider in providers {
        if provider.get("type").and_then(toml::Value::as_str) != Some("static") {
            continue;
        }
        let Some(values) = provider.get("values").and_then(toml::Value::as_table) else {
            continue;
        };
        for (name, value) in values {
            let value = value
                .as_str()
                .with_context(|| format!("{}: variable {name} is not a string", file.display()))?;
            vars.push((name.clone(), value.to_string()));
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::{read_static_variables, split_pair};

    #[test]
    fn reads_static_provider_values() -> anyhow::Result<()> {
        let file =
            std::env::temp_dir().join(format!("scopegate-host-rc-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            r#"
[key_value_store.default]
type = "spin"

[[variables_provider]]
type = "vault"
url = "http://127.0.0.1:8200"

[[variables_provider]]
type = "static"
[variables_provider.values]
issuer = "scopegate"
token_ttl = "300"
"#,
        )?;
        let vars = read_static_variables(&file);
        std::fs::remove_file(&file)?;
        assert_eq!(
            vars?,
            vec![
                ("issuer".to_string(), "scopegate".to_string()),
                ("token_ttl".to_string(), "300".to_string())
            ]
        );
        Ok(())
    }

    #[test]
    fn splits_pairs() {
        assert_eq!(split_pair("a=b=c").ok(), Some(("a".into(), "b=c".into())));
        assert_eq!(split_pair("a=").ok(), Some(("a".into(), String::new())));
        assert!(split_pair("=b").is_err());
        assert!(split_pair("ab").is_err());
    }
}
