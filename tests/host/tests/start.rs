//! `TestHost::start` checks, with tiny hand-written components: the Spin
//! interfaces the host defines must type-check against what a guest built
//! from Spin's WIT imports, and anything unknown must be refused by name.
//! (Serving requests needs a real component; see the crate docs.)

use std::path::PathBuf;

use anyhow::bail;
use scopegate_testhost::{HostOptions, TestHost};

/// Write `wat` as a component binary under cargo's per-test temp directory.
fn component(name: &str, wat: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.wasm"));
    std::fs::write(&path, wat::parse_str(wat)?)?;
    Ok(path)
}

/// The error `start` fails with, as `{:#}` shows it.
fn start_error(opts: HostOptions) -> anyhow::Result<String> {
    match TestHost::start(opts) {
        Ok(_) => bail!("start unexpectedly succeeded"),
        Err(e) => Ok(format!("{e:#}")),
    }
}

/// The Spin 2.0.0 key-value and variables interfaces, as spin-sdk 5.2 imports them.
const SPIN_IMPORTS: &str = r#"
  (import "fermyon:spin/key-value@2.0.0" (instance
    (export "store" (type $store (sub resource)))
    (type $error' (variant
      (case "store-table-full") (case "no-such-store") (case "access-denied") (case "other" string)))
    (export "error" (type $error (eq $error')))
    (export "[static]store.open" (func (param "label" string) (result (result (own $store) (error $error)))))
    (export "[method]store.get" (func (param "self" (borrow $store)) (param "key" string)
      (result (result (option (list u8)) (error $error)))))
    (export "[method]store.set" (func (param "self" (borrow $store)) (param "key" string) (param "value" (list u8))
      (result (result (error $error)))))
    (export "[method]store.delete" (func (param "self" (borrow $store)) (param "key" string)
      (result (result (error $error)))))
    (export "[method]store.exists" (func (param "self" (borrow $store)) (param "key" string)
      (result (result bool (error $error)))))
    (export "[method]store.get-keys" (func (param "self" (borrow $store))
      (result (result (list string) (error $error)))))
  ))
  (import "fermyon:spin/variables@2.0.0" (instance
    (type $error' (variant
      (case "invalid-name" string) (case "undefined" string) (case "provider" string) (case "other" string)))
    (export "error" (type $error (eq $error')))
    (export "get" (func (param "name" string) (result (result string (error $error)))))
  ))
"#;

#[test]
fn spin_interfaces_link_and_missing_export_is_reported() -> anyhow::Result<()> {
    let wasm = component("spin-imports", &format!("(component {SPIN_IMPORTS})"))?;
    let err = start_error(HostOptions::new(wasm))?;
    // Imports were all satisfied: the failure is about the missing export.
    assert!(
        err.contains("does not export wasi:http/incoming-handler"),
        "{err}"
    );
    Ok(())
}

#[test]
fn unknown_import_is_refused_by_name() -> anyhow::Result<()> {
    let wasm = component(
        "redis-import",
        r#"(component (import "fermyon:spin/redis@2.0.0" (instance
            (export "publish" (func (param "channel" string))))))"#,
    )?;
    let err = start_error(HostOptions::new(wasm))?;
    assert!(
        err.contains("imports something this host does not provide"),
        "{err}"
    );
    assert!(err.contains("fermyon:spin/redis@2.0.0"), "{err}");
    Ok(())
}

#[test]
fn wrong_signature_is_refused() -> anyhow::Result<()> {
    let wasm = component(
        "bad-variables",
        r#"(component (import "fermyon:spin/variables@2.0.0" (instance
            (export "get" (func (param "name" string) (result string))))))"#,
    )?;
    let err = start_error(HostOptions::new(wasm))?;
    assert!(err.contains("fermyon:spin/variables@2.0.0"), "{err}");
    Ok(())
}

#[test]
fn bad_inputs_are_reported() -> anyhow::Result<()> {
    let missing = start_error(HostOptions::new("/nonexistent/scopegate.wasm"))?;
    assert!(missing.contains("cannot read component"), "{missing}");

    let not_wasm = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("not-wasm.wasm");
    std::fs::write(&not_wasm, b"hello")?;
    let err = start_error(HostOptions::new(&not_wasm))?;
    assert!(err.contains("cannot compile component"), "{err}");

    let mut opts = HostOptions::new(component("empty", "(component)")?);
    opts.variables.insert("Issuer".into(), "x".into());
    let err = start_error(opts)?;
    assert!(err.contains("invalid variable name"), "{err}");
    Ok(())
}
