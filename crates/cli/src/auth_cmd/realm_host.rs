//! Which token realms `scopegate auth` sends credentials to: not to a private, loopback,
//! link-local or unspecified IP address named by the registry's challenge, unless it is
//! the registry's own host and port, or `--allow-private-realm` says so.
//!
//! Security-sensitive: the realm comes from the registry's `WWW-Authenticate` header, so
//! a registry (or anyone answering for it) could otherwise send the user's password to a
//! cloud metadata address (`169.254.169.254`) or a service on the internal network. Only
//! IP literals are judged (as ureq parses and connects to them); a host name is not
//! resolved here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, bail, Result};
use url::{Host, Url};

/// `Ok` when credentials may go to `realm` for the registry at `registry_url` (its
/// `/v2/` URL): the realm's host is a public address or a name, or it equals the
/// registry's host and port, or `is_allowed` (`--allow-private-realm`).
pub fn check(realm: &str, registry_url: &str, is_allowed: bool) -> Result<()> {
    let realm_url =
        Url::parse(realm).map_err(|error| anyhow!("the realm {realm:?} is not a URL: {error}"))?;
    let Some(address) = private_address(&realm_url) else {
        return Ok(());
    };
    if is_allowed || is_same_origin_host(&realm_url, registry_url) {
        return Ok(());
    }
    bail!(
        "the registry's token realm {realm} is on {address}, a private, loopback, link-local \
         or unspecified address other than the registry's own host and port; no credentials \
         were sent. Pass --allow-private-realm if you trust it"
    )
}

/// The realm's host when it is an IP literal that [`is_private`] judges private.
fn private_address(url: &Url) -> Option<IpAddr> {
    let address = match url.host()? {
        Host::Ipv4(v4) => IpAddr::V4(v4),
        Host::Ipv6(v6) => IpAddr::V6(v6),
        Host::Domain(_) => return None,
    };
    is_private(address).then_some(address)
}

/// Whether the realm has the registry's host and port (default ports filled in).
fn is_same_origin_host(realm: &Url, registry_url: &str) -> bool {
    Url::parse(registry_url).is_ok_and(|registry| {
        registry.host() == realm.host()
            && registry.port_or_known_default() == realm.port_or_known_default()
    })
}

/// Private (RFC 1918, unique local `fc00::/7`), loopback, link-local or unspecified, in
/// IPv4, IPv6, and IPv4 mapped into IPv6.
fn is_private(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => is_private_v6(v6),
        },
    }
}

fn is_private_v4(v4: Ipv4Addr) -> bool {
    v4.is_private() || v4.is_loopback() || v4.is_link_local() || v4.is_unspecified()
}

fn is_private_v6(v6: Ipv6Addr) -> bool {
    v6.is_loopback() || v6.is_unspecified() || v6.is_unique_local() || v6.is_unicast_link_local()
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        reason = "tests: a panic is how a test fails"
    )]

    use super::*;

    #[test]
    fn private_realms_are_refused_unless_they_are_the_registry_or_allowed() {
        // (realm, registry's /v2/ URL, accepted without the flag)
        let cases = [
            (
                "https://auth.example.com/token",
                "https://r.example/v2/",
                true,
            ),
            ("https://203.0.113.7/token", "https://r.example/v2/", true),
            ("https://[2001:db8::1]/token", "https://r.example/v2/", true),
            (
                "http://169.254.169.254/latest",
                "https://r.example/v2/",
                false,
            ),
            ("http://10.1.2.3/token", "https://r.example/v2/", false),
            ("http://172.16.0.1/token", "https://r.example/v2/", false),
            ("http://192.168.1.1/token", "https://r.example/v2/", false),
            (
                "http://127.0.0.1:3000/token",
                "https://r.example/v2/",
                false,
            ),
            ("http://0.0.0.0/token", "https://r.example/v2/", false),
            ("http://[::1]/token", "https://r.example/v2/", false),
            ("http://[::]/token", "https://r.example/v2/", false),
            ("http://[fe80::1]/token", "https://r.example/v2/", false),
            ("http://[fd00::1]/token", "https://r.example/v2/", false),
            (
                "http://[::ffff:127.0.0.1]/token",
                "https://r.example/v2/",
                false,
            ),
            (
                "http://[::ffff:169.254.169.254]/",
                "https://r.example/v2/",
                false,
            ),
            // The URL parser ureq connects with reads these as 127.0.0.1.
            ("http://2130706433/token", "https://r.example/v2/", false),
            ("http://0x7f.1/token", "https://r.example/v2/", false),
            // The registry's own host and port: its realm may live there.
            (
                "http://127.0.0.1:5000/token",
                "http://127.0.0.1:5000/v2/",
                true,
            ),
            ("https://10.0.0.5/token", "https://10.0.0.5:443/v2/", true),
            ("http://[::1]:5000/t", "http://[::1]:5000/v2/", true),
            (
                "http://127.0.0.1:3000/token",
                "http://127.0.0.1:5000/v2/",
                false,
            ),
            (
                "http://127.0.0.2:5000/token",
                "http://127.0.0.1:5000/v2/",
                false,
            ),
            (
                "https://127.0.0.1:5000/token",
                "http://127.0.0.1:5000/v2/",
                true,
            ),
        ];
        for (realm, registry, is_accepted) in cases {
            assert_eq!(
                check(realm, registry, false).is_ok(),
                is_accepted,
                "{realm} for {registry}"
            );
            assert!(check(realm, registry, true).is_ok(), "allowed: {realm}");
        }
        let error = check("http://169.254.169.254/", "https://r.example/v2/", false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("169.254.169.254") && error.contains("--allow-private-realm"),
            "{error}"
        );
    }
}
