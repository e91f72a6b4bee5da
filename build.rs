//! Compiles `policies/*.toml` into the component: validates them with the same loader the
//! `scopegate` tool uses and writes the compact form to `$OUT_DIR/policy.bin`, which the
//! component embeds with `include_bytes!`. An invalid policy fails `cargo build` with one
//! `file:line: message` per problem; it can never reach a request.
//!
//! `SCOPEGATE_POLICY_DIR`, when set, names another folder to compile instead
//! of `policies/` (the OIDC tests build a component that trusts their own
//! loopback issuer this way; the shipped policies never trust one).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use scopegate_policy::Policy;

fn main() -> ExitCode {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SCOPEGATE_POLICY_DIR");
    let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        eprintln!("error: CARGO_MANIFEST_DIR is not set (build.rs runs under cargo)");
        return ExitCode::FAILURE;
    };
    let Some(out_dir) = std::env::var_os("OUT_DIR") else {
        eprintln!("error: OUT_DIR is not set (build.rs runs under cargo)");
        return ExitCode::FAILURE;
    };
    let policies = match std::env::var_os("SCOPEGATE_POLICY_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(&manifest_dir).join("policies"),
    };
    println!("cargo:rerun-if-changed={}", policies.display());
    let policy = match Policy::load_dir(&policies) {
        Ok(policy) => policy,
        Err(error) => {
            // Once, on stderr: cargo shows a failed build script's stderr
            // (and its stdout, so nothing is printed there).
            eprintln!("error: invalid policy in {}:", policies.display());
            eprintln!("{error}");
            eprintln!("(run `scopegate policy check` for the same report)");
            return ExitCode::FAILURE;
        }
    };
    let compiled = policy.to_compiled();
    if let Err(error) = Policy::from_compiled(&compiled) {
        eprintln!("error: the compiled policy does not decode: {error}");
        return ExitCode::FAILURE;
    }
    let target = PathBuf::from(out_dir).join("policy.bin");
    if let Err(error) = std::fs::write(&target, &compiled) {
        eprintln!("error: cannot write {}: {error}", target.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
