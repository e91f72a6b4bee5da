//! HTTP to the identity provider: GET of JSON documents and form POSTs to its endpoints,
//! with the provider's OAuth errors (`{"error", "error_description"}`) kept apart from
//! transport failures. Redirects are never followed, so an `https://` endpoint cannot send
//! a credential elsewhere.

use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use serde_json::Value;

use super::printable;

/// An agent for the provider's endpoints.
pub struct Http {
    agent: ureq::Agent,
}

/// A form POST that did not give a JSON answer with status 200.
#[derive(Debug)]
pub enum PostError {
    /// The provider answered an OAuth error (RFC 6749 section 5.2; RFC 8628 section 3.5).
    OAuth {
        status: u16,
        /// `error`, e.g. `invalid_grant`, `authorization_pending`.
        error: String,
        /// `error_description`, printable, possibly empty.
        description: String,
    },
    /// The provider could not be reached, or answered something that is not an OAuth
    /// answer.
    Other(anyhow::Error),
}

impl std::fmt::Display for PostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PostError::OAuth {
                status,
                error,
                description,
            } => {
                write!(f, "{error} ({status})")?;
                if !description.is_empty() {
                    write!(f, ": {description}")?;
                }
                Ok(())
            }
            PostError::Other(error) => write!(f, "{error:#}"),
        }
    }
}

impl std::error::Error for PostError {}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

impl Http {
    pub fn new() -> Http {
        Http {
            agent: ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(30))
                .redirects(0)
                .user_agent(concat!("scopegate/", env!("CARGO_PKG_VERSION")))
                .build(),
        }
    }

    /// The JSON document at `url` (status 200 only).
    pub fn get_json(&self, url: &str) -> Result<Value> {
        let response = match self.agent.get(url).call() {
            Ok(response) => response,
            Err(ureq::Error::Status(status, _)) => {
                return Err(anyhow!("GET {url}: the provider answered {status}"))
            }
            Err(ureq::Error::Transport(transport)) => {
                return Err(anyhow!(
                    "GET {url}: {}",
                    crate::transport_error::describe(&transport)
                ))
            }
        };
        let text = response
            .into_string()
            .with_context(|| format!("GET {url}: reading the answer"))?;
        serde_json::from_str(&text).with_context(|| format!("GET {url}: the answer is not JSON"))
    }

    /// POSTs `form` to `url`: the JSON object answered with 200, or the OAuth error
    /// answered with 400 or 401.
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Value, PostError> {
        let response = match self
            .agent
            .post(url)
            .set("Accept", "application/json")
            .send_form(form)
        {
            Ok(response) => response,
            Err(ureq::Error::Status(status, response)) => {
                let body: Option<Value> = response
                    .into_string()
                    .ok()
                    .and_then(|text| serde_json::from_str(&text).ok());
                let error = body
                    .as_ref()
                    .and_then(|body| body["error"].as_str())
                    .map(printable);
                return Err(match error {
                    Some(error) if !error.is_empty() => PostError::OAuth {
                        status,
                        error,
                        description: body
                            .as_ref()
                            .and_then(|body| body["error_description"].as_str())
                            .map(printable)
                            .unwrap_or_default(),
                    },
                    _ => PostError::Other(anyhow!("POST {url}: the provider answered {status}")),
                });
            }
            Err(ureq::Error::Transport(transport)) => {
                return Err(PostError::Other(anyhow!(
                    "POST {url}: {}",
                    crate::transport_error::describe(&transport)
                )))
            }
        };
        // Redirects are not followed, and ureq hands a 3xx back as `Ok`: only a 200 is
        // an answer.
        if response.status() != 200 {
            return Err(PostError::Other(anyhow!(
                "POST {url}: the provider answered {}",
                response.status()
            )));
        }
        let text = response.into_string().map_err(|error| {
            PostError::Other(anyhow!("POST {url}: reading the answer: {error}"))
        })?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|_| PostError::Other(anyhow!("POST {url}: the answer is not JSON")))?;
        if !value.is_object() {
            return Err(PostError::Other(anyhow!(
                "POST {url}: the answer is not a JSON object"
            )));
        }
        Ok(value)
    }

    /// POSTs `form` to `url`, for endpoints whose success is a 200 with any body
    /// (RFC 7009 revocation).
    pub fn post_empty_ok(&self, url: &str, form: &[(&str, &str)]) -> Result<(), PostError> {
        match self.agent.post(url).send_form(form) {
            Ok(response) if response.status() == 200 => Ok(()),
            // A redirect (not followed) revokes nothing.
            Ok(response) => Err(PostError::Other(anyhow!(
                "POST {url}: the provider answered {}",
                response.status()
            ))),
            Err(ureq::Error::Status(status, _)) => Err(PostError::Other(anyhow!(
                "POST {url}: the provider answered {status}"
            ))),
            Err(ureq::Error::Transport(transport)) => Err(PostError::Other(anyhow!(
                "POST {url}: {}",
                crate::transport_error::describe(&transport)
            ))),
        }
    }
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
    use std::io::{Read as _, Write as _};

    /// A loopback server answering every request with `answer`; its URL.
    fn answering(answer: &'static str, requests: usize) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/endpoint", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(requests) {
                let mut stream = stream.unwrap();
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer);
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        url
    }

    /// Redirects are not followed, and a redirect is no answer: a revocation that was
    /// redirected revoked nothing, a token request that was redirected got no tokens.
    #[test]
    fn a_redirect_is_an_error_not_a_success() {
        let redirect = "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/elsewhere\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let url = answering(redirect, 2);
        let http = Http::new();
        assert!(http.post_empty_ok(&url, &[("token", "t")]).is_err());
        assert!(http.post_form(&url, &[("grant_type", "x")]).is_err());
        let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
        let url = answering(ok, 2);
        assert!(http.post_empty_ok(&url, &[("token", "t")]).is_ok());
        assert!(http.post_form(&url, &[("grant_type", "x")]).is_ok());
    }
}
