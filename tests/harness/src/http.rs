//! A raw HTTP/1.1 client, so tests control exactly what goes over the wire
//! (chunked bodies, odd headers) and see exactly what comes back.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How to send a request body.
pub enum Body<'a> {
    None,
    Sized(&'a [u8]),
    Chunked(&'a [u8]),
}

/// One HTTP response.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// The first header called `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body as JSON; panics, showing the body, when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Parses a whole response as read up to the connection's end; the body
    /// of a HEAD reply is empty whatever its headers say.
    pub fn parse(raw: &[u8], is_head: bool) -> std::io::Result<Reply> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
        let split = raw
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .ok_or_else(|| {
                invalid(&format!(
                    "no HTTP head in {:?}",
                    String::from_utf8_lossy(raw)
                ))
            })?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|line| line.split(' ').nth(1))
            .and_then(|code| code.parse().ok())
            .ok_or_else(|| invalid("no status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
            .collect();
        let mut body = if is_head {
            Vec::new()
        } else {
            raw[split + 4..].to_vec()
        };
        if headers
            .iter()
            .any(|(name, value)| name == "transfer-encoding" && value.contains("chunked"))
        {
            body = dechunk(&body).ok_or_else(|| invalid("bad chunked body"))?;
        }
        Ok(Reply {
            status,
            headers,
            body,
        })
    }
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let end = data.windows(2).position(|window| window == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(end + 2..end + 2 + size)?);
        data = data.get(end + 2 + size + 2..)?;
    }
}

/// Sends one request over a fresh connection (`Connection: close`) and
/// reads the whole reply.
pub fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    match body {
        Body::None => {}
        Body::Sized(bytes) => head.push_str(&format!("Content-Length: {}\r\n", bytes.len())),
        Body::Chunked(_) => head.push_str("Transfer-Encoding: chunked\r\n"),
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    match body {
        Body::None => {}
        // The server may answer (413) and close before all is sent.
        Body::Sized(bytes) => {
            let _ = stream.write_all(bytes);
        }
        Body::Chunked(bytes) => {
            for chunk in bytes.chunks(1000) {
                if stream
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .is_err()
                    || stream.write_all(chunk).is_err()
                    || stream.write_all(b"\r\n").is_err()
                {
                    break;
                }
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        }
    }
    let mut raw = Vec::new();
    // A reset after a complete reply (the server closed early) still counts.
    if let Err(error) = stream.read_to_end(&mut raw) {
        if raw.is_empty() {
            return Err(error);
        }
    }
    Reply::parse(&raw, method == "HEAD")
}
