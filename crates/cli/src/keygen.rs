//! `scopegate keygen`: a production signing key, its self-signed
//! certificate, and the registry configuration that trusts them.

use anyhow::{bail, Context, Result};
use rcgen::{
    CertificateParams, DistinguishedName, DnType, KeyPair, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
    PKCS_RSA_SHA256,
};
use scopegate::sign::{Algorithm, Header, Signer};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Arguments of `scopegate keygen`.
#[derive(Debug, clap::Args)]
pub struct KeygenArgs {
    /// Signing algorithm (the server's `signing_alg`): ES256 works with
    /// every registry, EdDSA with distribution 3.x only, RS256 (2048-bit
    /// RSA) with verifiers that take RSA only.
    #[arg(long, default_value = "ES256", value_parser = parse_algorithm)]
    pub alg: Algorithm,
    /// Directory to write signing-key.pem and signing-cert.pem into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// Common name of the certificate.
    #[arg(long, default_value = "scopegate token signer")]
    pub name: String,
    /// Certificate validity in days. The registry stops trusting tokens
    /// when the certificate in its rootcertbundle expires.
    #[arg(long, default_value_t = 3650)]
    pub days: u32,
    /// The issuer the registry will expect (`auth.token.issuer`).
    #[arg(long, default_value = "scopegate")]
    pub issuer: String,
    /// The service name (`auth.token.service`).
    #[arg(long, default_value = "registry")]
    pub service: String,
    /// Public URL of scopegate's /token (`auth.token.realm`).
    #[arg(long, default_value = "https://auth.example.com/token")]
    pub realm: String,
}

fn parse_algorithm(name: &str) -> Result<Algorithm, String> {
    Algorithm::parse(name).ok_or_else(|| format!("{name:?} is not ES256, EdDSA or RS256"))
}

/// A fresh key of `algorithm`. ring (rcgen's backend) makes P-256 and
/// Ed25519 keys but no RSA keys: those come from RustCrypto's `rsa`.
fn generate(algorithm: Algorithm) -> Result<KeyPair> {
    match algorithm {
        Algorithm::Es256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256),
        Algorithm::EdDsa => KeyPair::generate_for(&PKCS_ED25519),
        Algorithm::Rs256 => {
            use rsa::pkcs8::EncodePrivateKey as _;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .context("generating the RSA key")?;
            let pem = key
                .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
                .context("encoding the RSA key")?;
            KeyPair::from_pkcs8_pem_and_sign_algo(&pem, &PKCS_RSA_SHA256)
        }
    }
    .context("generating the key")
}

/// Writes a fresh key of `--alg` (PKCS#8 PEM, mode 0600) and a self-signed
/// certificate into `--out` (created with mode 0700 when missing), refusing
/// to overwrite existing files, then prints the registry and Spin
/// configuration that goes with them.
pub fn run(args: &KeygenArgs) -> Result<()> {
    crate::private_files::create_private_dir(&args.out)?;
    let key_path = args.out.join("signing-key.pem");
    let cert_path = args.out.join("signing-cert.pem");
    for path in [&key_path, &cert_path] {
        if path.exists() {
            bail!(
                "{} exists already; refusing to overwrite it",
                path.display()
            );
        }
    }
    let key = generate(args.alg)?;
    let mut params = CertificateParams::new(Vec::<String>::new()).context("certificate")?;
    let mut subject = DistinguishedName::new();
    subject.push(DnType::CommonName, args.name.as_str());
    params.distinguished_name = subject;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(i64::from(args.days));
    let cert = params
        .self_signed(&key)
        .context("signing the certificate")?;

    write_new(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_new(&cert_path, cert.pem().as_bytes(), false)?;
    let public = Signer::from_pem(
        args.alg,
        &key.serialize_pem(),
        &cert.pem(),
        Header::KidAndX5c,
    )
    .ok()
    .filter(Signer::is_pair)
    .context("the new key and certificate do not load as a pair")?;
    let kid = public.public_key().kid().to_string();

    println!(
        "Wrote {} (secret) and {}.",
        key_path.display(),
        cert_path.display()
    );
    println!("Key id (kid, RFC 7638): {kid}");
    println!();
    println!("# Spin variables (keep signing_key in a secret store):");
    println!(
        "#   SPIN_VARIABLE_SIGNING_KEY=\"$(cat {})\"",
        key_path.display()
    );
    println!(
        "#   SPIN_VARIABLE_SIGNING_CERT=\"$(cat {})\"",
        cert_path.display()
    );
    println!("#   SPIN_VARIABLE_SIGNING_ALG={}", args.alg.name());
    println!("#   SPIN_VARIABLE_ISSUER={}", args.issuer);
    println!("#   SPIN_VARIABLE_SERVICES={}", args.service);
    println!();
    if args.alg == Algorithm::EdDsa {
        println!("# Registry config.yml (distribution 3.x: 2.8 refuses EdDSA tokens):");
    } else {
        println!("# Registry config.yml (distribution 2.8 and 3.x):");
    }
    println!("auth:");
    println!("  token:");
    println!("    realm: {}", args.realm);
    println!("    service: {}", args.service);
    println!("    issuer: {}", args.issuer);
    println!(
        "    rootcertbundle: /etc/docker/registry/{}",
        file_name(&cert_path)
    );
    println!("    # distribution 3.x may trust the JWKS instead of the bundle: save");
    println!("    # GET /.well-known/jwks.json as jwks.json, replace rootcertbundle with");
    println!("    #   jwks: /etc/docker/registry/jwks.json");
    println!("    # and set SPIN_VARIABLE_SEND_X5C=false (tokens then name the key by kid only).");
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn write_new(path: &Path, contents: &[u8], is_secret: bool) -> Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if is_secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = is_secret;
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents)
        .with_context(|| format!("writing {}", path.display()))
}
