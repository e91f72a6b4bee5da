//! One JSON line per request. Secrets, passwords and tokens never reach it:
//! only names, kinds, scopes and outcomes.

use serde::Serialize;

/// What the log line of one request says.
#[derive(Debug, Default, Serialize)]
pub struct RequestLog {
    pub request_id: String,
    pub method: &'static str,
    pub path: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted: Option<String>,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub latency_us: u64,
}

impl RequestLog {
    /// The line to write, without a trailing newline.
    pub fn to_line(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
