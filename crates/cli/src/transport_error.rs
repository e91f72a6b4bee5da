//! What went wrong below HTTP (connecting, TLS, reading), in words, for the CLI's errors.

/// `KIND: message: cause` of a ureq transport error, without the URL: ureq's own
/// `Display` starts with it, and the CLI's messages name the URL themselves (once).
pub fn describe(transport: &ureq::Transport) -> String {
    let mut what = transport.kind().to_string();
    if let Some(message) = transport.message() {
        what = format!("{what}: {message}");
    }
    if let Some(source) = std::error::Error::source(transport) {
        what = format!("{what}: {source}");
    }
    what
}
