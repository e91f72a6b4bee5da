//! The HTTP request and response as the core sees them, independent of Spin.

/// The request methods scopegate distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Other,
}

impl Method {
    /// The method as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Head => "HEAD",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Other => "OTHER",
        }
    }
}

/// An incoming request whose body has already been read within the
/// route's limit ([`body_limit`]).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: Method,
    /// The path without the query, e.g. `/token`.
    pub path: String,
    /// The raw query string without `?`, possibly empty.
    pub query: String,
    /// Header names in lowercase.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The most body bytes this request's route accepts ([`body_limit`]), or
    /// [`crate::Error::PayloadTooLarge`] at once when its `Content-Length`
    /// declares more. The entry points call it on the request's head, before
    /// reading any body.
    pub fn body_limit(&self) -> Result<usize, crate::Error> {
        let limit = body_limit(&self.path);
        if declares_more_than(&self.headers, limit) {
            Err(crate::Error::PayloadTooLarge)
        } else {
            Ok(limit)
        }
    }

    /// The first value of header `name` (lowercase), if it is valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .and_then(|(_, value)| std::str::from_utf8(value).ok())
    }
}

/// Whether `headers` (lowercase names) declare a `Content-Length` over
/// `limit`: the entry point then refuses at once with 413, without waiting
/// for a body it would refuse anyway (a client may declare a gigabyte and
/// send a few bytes). An unparsable length is left to the HTTP server.
pub fn declares_more_than(headers: &[(String, Vec<u8>)], limit: usize) -> bool {
    headers
        .iter()
        .filter(|(name, _)| name == "content-length")
        .filter_map(|(_, value)| std::str::from_utf8(value).ok())
        .filter_map(|value| value.trim().parse::<u64>().ok())
        .any(|length| length > limit as u64)
}

/// The largest body a route accepts. The entry point stops reading past
/// it, whatever `Content-Length` says or when there is none (chunked).
pub fn body_limit(path: &str) -> usize {
    if path.starts_with("/admin/") {
        64 * 1024
    } else {
        16 * 1024
    }
}

/// How long an entry point waits for a whole request body, from the moment
/// it starts reading it; past this it answers 408 ([`crate::Error::BodyTimeout`])
/// and reads nothing more. A client that declares a small body and sends
/// part of it, or trickles it a byte at a time, would otherwise hold the
/// request and its instance for as long as it likes. Every body scopegate
/// accepts fits in 64 KiB and real clients send it at once, so ten seconds
/// is ample for a slow link and short enough to bound what a slow client holds.
pub const BODY_READ_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// A response ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// A JSON response with `Cache-Control: no-store` (tokens must not be cached).
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cache-control".into(), "no-store".into()),
            ],
            body: value.to_string().into_bytes(),
        }
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_string(), value));
        self
    }

    /// The value of header `name`, for tests.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

#[cfg(test)]
mod declared_length_tests {
    use super::declares_more_than;

    #[test]
    fn only_a_parsable_length_over_the_limit_counts() {
        let cases: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("content-length", "16384")], false),
            (&[("content-length", "16385")], true),
            (&[("content-length", "999999999")], true),
            (&[("content-length", " 20000 ")], true),
            (&[("content-length", "lots")], false),
            (&[("content-type", "999999999")], false),
        ];
        for (headers, expected) in cases {
            let headers: Vec<(String, Vec<u8>)> = headers
                .iter()
                .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
                .collect();
            assert_eq!(
                declares_more_than(&headers, 16 * 1024),
                *expected,
                "{headers:?}"
            );
        }
    }

    #[test]
    fn a_head_gets_its_routes_limit_or_413() {
        use super::{HttpRequest, Method};
        let head = |path: &str, length: &str| HttpRequest {
            method: Method::Post,
            path: path.into(),
            query: String::new(),
            headers: vec![("content-length".into(), length.as_bytes().to_vec())],
            body: Vec::new(),
        };
        assert_eq!(head("/token", "10").body_limit().ok(), Some(16 * 1024));
        assert_eq!(
            head("/admin/users", "20000").body_limit().ok(),
            Some(64 * 1024)
        );
        assert!(matches!(
            head("/token", "20000").body_limit(),
            Err(crate::Error::PayloadTooLarge)
        ));
    }
}
