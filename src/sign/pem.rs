//! PEM blocks and the public key inside a certificate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use p256::pkcs8::der::asn1::AnyRef;
use p256::pkcs8::der::{
    Decode as _, Encode as _, Header, Reader as _, SliceReader, Tag, TagNumber, Tagged as _,
};

use super::KeyError;

/// The DER contents of every PEM block with `label`, in order.
pub fn blocks(pem: &str, label: &'static str) -> Result<Vec<Vec<u8>>, KeyError> {
    let begin = format!("-----BEGIN {label}-----");
    let end_marker = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(&begin) {
        let body = &rest[start + begin.len()..];
        let end = body
            .find(&end_marker)
            .ok_or(KeyError("a PEM block is not terminated"))?;
        let base64: String = body[..end]
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = STANDARD
            .decode(base64)
            .map_err(|_| KeyError("a PEM block is not valid base64"))?;
        blocks.push(der);
        rest = &body[end + end_marker.len()..];
    }
    Ok(blocks)
}

/// The DER SubjectPublicKeyInfo of an X.509 certificate: the seventh field
/// of its `tbsCertificate` (RFC 5280, 4.1), after the optional `[0]`
/// version and five fields skipped whole. Nothing else of the certificate
/// is decoded: a fresh instance per request pays for no names, validity or
/// extensions (the registry checks the certificate; scopegate needs its key).
pub fn certificate_spki(certificate: &[u8]) -> Result<Vec<u8>, KeyError> {
    spki_field(certificate).ok_or(KeyError("signing_cert is not a valid X.509 certificate"))
}

fn spki_field(certificate: &[u8]) -> Option<Vec<u8>> {
    let mut outer = SliceReader::new(certificate).ok()?;
    let header = Header::decode(&mut outer).ok()?;
    if header.tag != Tag::Sequence {
        return None;
    }
    let header = Header::decode(&mut outer).ok()?;
    if header.tag != Tag::Sequence {
        return None;
    }
    let mut tbs = SliceReader::new(outer.read_slice(header.length).ok()?).ok()?;
    let version = Tag::ContextSpecific {
        constructed: true,
        number: TagNumber::N0,
    };
    if tbs.peek_tag().ok()? == version {
        AnyRef::decode(&mut tbs).ok()?;
    }
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        AnyRef::decode(&mut tbs).ok()?;
    }
    let spki = AnyRef::decode(&mut tbs).ok()?;
    if spki.tag() != Tag::Sequence {
        return None;
    }
    spki.to_der().ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests: a panic is how a test fails")]
mod tests {
    use super::*;

    #[test]
    fn blocks_in_order_and_broken_ones_refused() {
        let two = "-----BEGIN X-----\nAQI=\n-----END X-----\nnoise\n-----BEGIN X-----\nAw==\n-----END X-----";
        assert_eq!(blocks(two, "X").unwrap(), [vec![1, 2], vec![3]]);
        assert!(blocks(two, "Y").unwrap().is_empty());
        assert!(blocks("-----BEGIN X-----\nAQI=", "X").is_err());
        assert!(blocks("-----BEGIN X-----\n!!\n-----END X-----", "X").is_err());
    }

    #[test]
    fn the_dev_certificate_holds_a_p256_key() {
        let der = blocks(include_str!("../../dev/signing-cert.pem"), "CERTIFICATE").unwrap();
        let spki = certificate_spki(&der[0]).unwrap();
        let key = super::super::PublicKey::from_spki_der(&spki).unwrap();
        assert_eq!(key.algorithm(), super::super::Algorithm::Es256);
        assert!(certificate_spki(&der[0][1..]).is_err());
        assert!(certificate_spki(&der[0][..der[0].len() / 2]).is_err());
        assert!(certificate_spki(&[]).is_err());
    }

    #[test]
    fn the_key_is_the_one_a_full_x509_parser_finds() {
        use x509_cert::der::{Decode as _, Encode as _};
        for pem in [
            include_str!("../../dev/signing-cert.pem"),
            include_str!("../../tests/keys/ed25519-cert.pem"),
            include_str!("../../tests/keys/rsa-cert.pem"),
            include_str!("../../tests/keys/other-p256-cert.pem"),
        ] {
            let der = &blocks(pem, "CERTIFICATE").unwrap()[0];
            let full = x509_cert::Certificate::from_der(der).unwrap();
            let expected = full
                .tbs_certificate
                .subject_public_key_info
                .to_der()
                .unwrap();
            assert_eq!(certificate_spki(der).unwrap(), expected);
        }
    }
}
