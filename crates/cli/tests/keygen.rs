//! `scopegate keygen` as an operator runs it the first time: into a folder
//! that does not exist yet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

#[test]
fn keygen_creates_a_missing_folder_readable_by_its_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("keys/prod");
    let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .arg("keygen")
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = std::fs::read_to_string(out.join("signing-key.pem")).unwrap();
    let cert = std::fs::read_to_string(out.join("signing-cert.pem")).unwrap();
    assert!(scopegate::sign::Signer::from_pem(&key, &cert)
        .unwrap()
        .is_pair());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
}
