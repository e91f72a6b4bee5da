//! The signer of every algorithm, checked with jwt-simple (an implementation
//! independent of the signer's assembly of the JWS). Test code only: its unwraps are
//! how a test fails.
#![cfg(test)]

use super::*;
use jwt_simple::prelude::{
    ECDSAP256PublicKeyLike as _, ES256PublicKey, Ed25519PublicKey, EdDSAPublicKeyLike as _,
    JWTClaims, NoCustomClaims, RS256PublicKey, RSAPublicKeyLike as _, VerificationOptions,
};

const DEV_KEY: &str = include_str!("../../dev/signing-key.pem");
const DEV_CERT: &str = include_str!("../../dev/signing-cert.pem");
const ED_KEY: &str = include_str!("../../tests/keys/ed25519-key.pem");
const ED_CERT: &str = include_str!("../../tests/keys/ed25519-cert.pem");
const ED_PUBLIC: &str = include_str!("../../tests/keys/ed25519-public.pem");
const RSA_KEY: &str = include_str!("../../tests/keys/rsa-key.pem");
const RSA_CERT: &str = include_str!("../../tests/keys/rsa-cert.pem");
const RSA_PUBLIC: &str = include_str!("../../tests/keys/rsa-public.pem");
const RSA_1024_KEY: &str = include_str!("../../tests/keys/rsa1024-key.pem");
const OTHER_KEY: &str = include_str!("../../tests/keys/other-p256-key.pem");
const OTHER_CERT: &str = include_str!("../../tests/keys/other-p256-cert.pem");
const OTHER_PUBLIC: &str = include_str!("../../tests/keys/other-p256-public.pem");

const ALL: [(Algorithm, &str, &str); 3] = [
    (Algorithm::Es256, DEV_KEY, DEV_CERT),
    (Algorithm::EdDsa, ED_KEY, ED_CERT),
    (Algorithm::Rs256, RSA_KEY, RSA_CERT),
];

fn token(signer: &Signer) -> String {
    let caller = crate::authenticate::tests_support::anonymous();
    let grant = crate::grant::grant(crate::grant::policy().unwrap(), &caller, &[]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = TokenClaims::new(&caller, &grant, "iss", "svc", now, 300).unwrap();
    signer.sign(&claims).unwrap()
}

fn header(token: &str) -> serde_json::Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// Verifies `token` with jwt-simple against a JWK of the JWKS, and returns
/// whether it verified.
fn verifies_with_jwk(token: &str, jwk: &serde_json::Value) -> bool {
    let options = Some(VerificationOptions::default());
    let jwk = jwk.to_string();
    let verified: Result<JWTClaims<NoCustomClaims>, _> = match jwk_alg(&jwk).as_str() {
        "ES256" => ES256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(token, options),
        "EdDSA" => Ed25519PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(token, options),
        "RS256" => RS256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token(token, options),
        _ => return false,
    };
    verified.is_ok()
}

fn jwk_alg(jwk: &str) -> String {
    let jwk: serde_json::Value = serde_json::from_str(jwk).unwrap();
    jwk["alg"].as_str().unwrap().to_string()
}

/// The key inside the header's `x5c` leaf, verified with jwt-simple.
fn verifies_with_x5c(token: &str, algorithm: Algorithm) -> bool {
    let leaf = STANDARD
        .decode(header(token)["x5c"][0].as_str().unwrap())
        .unwrap();
    let spki = pem::certificate_spki(&leaf).unwrap();
    let options = Some(VerificationOptions::default());
    let verified: Result<JWTClaims<NoCustomClaims>, _> = match algorithm {
        Algorithm::Es256 => ES256PublicKey::from_der(&spki)
            .unwrap()
            .verify_token(token, options),
        Algorithm::EdDsa => Ed25519PublicKey::from_der(&spki)
            .unwrap()
            .verify_token(token, options),
        Algorithm::Rs256 => RS256PublicKey::from_der(&spki)
            .unwrap()
            .verify_token(token, options),
    };
    verified.is_ok()
}

#[test]
fn every_algorithm_signs_tokens_its_jwk_and_its_x5c_verify() {
    for (algorithm, key, cert) in ALL {
        let signer = Signer::from_pem(algorithm, key, cert, Header::KidAndX5c).unwrap();
        assert!(signer.is_pair(), "{algorithm:?}");
        let token = token(&signer);
        let header = header(&token);
        assert_eq!(header["alg"], algorithm.name());
        assert_eq!(header["kid"], signer.public_key().kid());
        assert_eq!(header["x5c"].as_array().unwrap().len(), 1);
        let jwk = signer.public_key().jwk();
        assert_eq!(jwk["alg"], algorithm.name());
        assert!(verifies_with_jwk(&token, &jwk), "{algorithm:?} by JWK");
        assert!(verifies_with_x5c(&token, algorithm), "{algorithm:?} by x5c");
        assert!(!format!("{signer:?}").contains("PRIVATE"));
    }
}

#[test]
fn kid_only_headers_carry_no_x5c() {
    for (algorithm, key, cert) in ALL {
        let signer = Signer::from_pem(algorithm, key, cert, Header::KidOnly).unwrap();
        let token = token(&signer);
        let header = header(&token);
        assert_eq!(
            header.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["alg", "kid", "typ"],
            "{algorithm:?}"
        );
        assert!(verifies_with_jwk(&token, &signer.public_key().jwk()));
    }
}

#[test]
fn a_token_of_one_key_does_not_verify_with_another() {
    let dev = Signer::from_pem(Algorithm::Es256, DEV_KEY, DEV_CERT, Header::KidOnly).unwrap();
    let other = Signer::from_pem(Algorithm::Es256, OTHER_KEY, OTHER_CERT, Header::KidOnly).unwrap();
    assert!(!verifies_with_jwk(&token(&dev), &other.public_key().jwk()));
    assert_ne!(dev.public_key().kid(), other.public_key().kid());
}

#[test]
fn es256_signatures_are_deterministic() {
    let signer = Signer::from_pem(Algorithm::Es256, DEV_KEY, DEV_CERT, Header::KidAndX5c).unwrap();
    let caller = crate::authenticate::tests_support::anonymous();
    let grant = crate::grant::grant(crate::grant::policy().unwrap(), &caller, &[]);
    let claims = TokenClaims::new(&caller, &grant, "iss", "svc", 1_800_000_000, 300).unwrap();
    assert_eq!(signer.sign(&claims).unwrap(), signer.sign(&claims).unwrap());
}

#[test]
fn an_es256_certificate_for_another_key_loads_but_is_no_pair() {
    // Loading derives no ES256 public key; the pair check does.
    let signer =
        Signer::from_pem(Algorithm::Es256, OTHER_KEY, DEV_CERT, Header::KidAndX5c).unwrap();
    assert!(!signer.is_pair_free());
    assert!(!signer.is_pair());
}

#[test]
fn eddsa_and_rs256_refuse_a_mismatched_pair_when_loading() {
    let other_ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH\n-----END PRIVATE KEY-----\n";
    assert_eq!(
        Signer::from_pem(Algorithm::EdDsa, other_ed, ED_CERT, Header::KidOnly).err(),
        Some(NOT_A_PAIR)
    );
    let rsa = Signer::from_pem(Algorithm::Rs256, RSA_KEY, RSA_CERT, Header::KidOnly).unwrap();
    assert!(rsa.is_pair_free() && rsa.is_pair());
}

#[test]
fn a_key_or_certificate_of_another_algorithm_is_refused() {
    for (algorithm, _, cert) in ALL {
        for (other, key, _) in ALL {
            if other == algorithm {
                continue;
            }
            assert_eq!(
                Signer::from_pem(algorithm, key, cert, Header::KidAndX5c).err(),
                Some(algorithm.wrong_key()),
                "{algorithm:?} with a {other:?} key"
            );
        }
    }
    assert_eq!(
        Signer::from_pem(Algorithm::Es256, DEV_KEY, ED_CERT, Header::KidAndX5c).err(),
        Some(KeyError(
            "signing_cert's key is not of signing_alg's algorithm"
        ))
    );
    assert_eq!(
        Signer::from_pem(Algorithm::Rs256, RSA_1024_KEY, RSA_CERT, Header::KidAndX5c).err(),
        Some(Algorithm::Rs256.wrong_key())
    );
}

#[test]
fn rejects_garbage() {
    assert!(Signer::from_pem(Algorithm::Es256, "nonsense", DEV_CERT, Header::KidAndX5c).is_err());
    assert_eq!(
        Signer::from_pem(Algorithm::Es256, DEV_KEY, "", Header::KidAndX5c).err(),
        Some(KeyError("signing_cert holds no certificate"))
    );
    assert!(
        PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
    );
}

#[test]
fn previous_public_keys_of_every_algorithm_match_their_signers() {
    for (public, key, cert, algorithm) in [
        (OTHER_PUBLIC, OTHER_KEY, OTHER_CERT, Algorithm::Es256),
        (ED_PUBLIC, ED_KEY, ED_CERT, Algorithm::EdDsa),
        (RSA_PUBLIC, RSA_KEY, RSA_CERT, Algorithm::Rs256),
    ] {
        let previous = PublicKey::from_pem(public).unwrap();
        let signer = Signer::from_pem(algorithm, key, cert, Header::KidOnly).unwrap();
        assert_eq!(previous.kid(), signer.public_key().kid());
        assert_eq!(previous.jwk(), signer.public_key().jwk());
        assert!(verifies_with_jwk(&token(&signer), &previous.jwk()));
    }
}

#[test]
fn algorithm_names_parse_as_jose_spells_them() {
    assert_eq!(Algorithm::parse("ES256"), Some(Algorithm::Es256));
    assert_eq!(Algorithm::parse("eddsa"), Some(Algorithm::EdDsa));
    assert_eq!(Algorithm::parse(" RS256 "), Some(Algorithm::Rs256));
    assert_eq!(Algorithm::parse("HS256"), None);
    assert_eq!(Algorithm::parse("Ed25519"), None);
}
