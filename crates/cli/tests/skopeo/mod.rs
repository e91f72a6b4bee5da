//! `skopeo copy` of a fresh one-layer image into a test registry, as an imported user
//! pushes with their old password (shared by the import tests).

use scopegate_harness::{require_program, Registry, Scratch};
use std::process::{Command, Output};

#[path = "../../../../tests/registry/oci.rs"]
#[allow(dead_code)]
mod oci;

/// `skopeo copy` of a fresh one-layer image to `registry` as `creds` (`user:password`).
pub fn push(scratch: &Scratch, registry: &Registry, reference: &str, creds: &str) -> Output {
    let skopeo = require_program("skopeo", "skopeo");
    let dir = scratch.dir(&format!("image-{}", reference.replace(['/', ':'], "-")));
    oci::write_layout(&dir, "src", reference);
    let home = scratch.dir("home");
    let policy = scratch.file(
        "policy.json",
        br#"{"default":[{"type":"insecureAcceptAnything"}]}"#,
    );
    Command::new(skopeo)
        .env("HOME", &home)
        .arg("--policy")
        .arg(&policy)
        .args(["copy", "--retry-times=0", "--dest-tls-verify=false"])
        .arg(format!("--dest-creds={creds}"))
        .arg(format!("oci:{}:src", dir.display()))
        .arg(format!("docker://{}/{reference}", registry.host()))
        .output()
        .unwrap()
}
