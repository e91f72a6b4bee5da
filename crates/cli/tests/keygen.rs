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
    assert!(scopegate::sign::Signer::from_pem(
        scopegate::sign::Algorithm::Es256,
        &key,
        &cert,
        scopegate::sign::Header::KidAndX5c
    )
    .unwrap()
    .is_pair());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    }
}

#[test]
fn keygen_makes_a_pair_of_every_algorithm() {
    use scopegate::sign::{Algorithm, Header, Signer};
    for (name, algorithm, kty) in [
        ("ES256", Algorithm::Es256, "EC"),
        ("EdDSA", Algorithm::EdDsa, "OKP"),
        ("RS256", Algorithm::Rs256, "RSA"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
            .args(["keygen", "--alg", name, "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            stdout.contains(&format!("SPIN_VARIABLE_SIGNING_ALG={name}")),
            "{stdout}"
        );
        let key = std::fs::read_to_string(dir.path().join("signing-key.pem")).unwrap();
        let cert = std::fs::read_to_string(dir.path().join("signing-cert.pem")).unwrap();
        let signer = Signer::from_pem(algorithm, &key, &cert, Header::KidAndX5c).unwrap();
        assert!(signer.is_pair(), "{name}");
        assert_eq!(signer.public_key().jwk()["kty"], kty);
        assert!(stdout.contains(signer.public_key().kid()));
        // The key of one algorithm is refused as another's.
        let other = if algorithm == Algorithm::Es256 {
            Algorithm::EdDsa
        } else {
            Algorithm::Es256
        };
        assert!(Signer::from_pem(other, &key, &cert, Header::KidAndX5c).is_err());
    }
    let output = Command::new(env!("CARGO_BIN_EXE_scopegate"))
        .args(["keygen", "--alg", "HS256"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("ES256, EdDSA or RS256"));
}
