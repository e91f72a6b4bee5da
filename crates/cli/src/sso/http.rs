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
            Ok(_) => Ok(()),
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
