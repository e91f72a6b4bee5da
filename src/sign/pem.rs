//! PEM blocks and the public key inside a certificate.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use x509_cert::der::{Decode as _, Encode as _};

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

/// The DER SubjectPublicKeyInfo of an X.509 certificate.
pub fn certificate_spki(certificate: &[u8]) -> Result<Vec<u8>, KeyError> {
    let certificate = x509_cert::Certificate::from_der(certificate)
        .map_err(|_| KeyError("signing_cert is not a valid X.509 certificate"))?;
    certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| KeyError("signing_cert's public key cannot be encoded"))
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
    }
}
