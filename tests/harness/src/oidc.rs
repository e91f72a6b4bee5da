//! A local OpenID issuer for the workload-identity tests: serves discovery
//! documents and JWKS from memory over plain HTTP on a free 127.0.0.1 port,
//! and counts the GETs of every path, so a test can see how often the
//! component fetched an issuer's keys. What it serves can change while it
//! runs (a key rotation; a JWKS taken away).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Default)]
struct State {
    /// Status line and body of each path served.
    documents: HashMap<String, (&'static str, Vec<u8>)>,
    gets: HashMap<String, usize>,
}

/// A running issuer; dropping it stops it.
pub struct OidcIssuer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OidcIssuer {
    /// Starts an issuer that serves nothing yet (every path is a 404).
    pub fn start() -> OidcIssuer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the OIDC issuer");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stopping) = (Arc::clone(&state), Arc::clone(&stopping));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        let state = Arc::clone(&state);
                        std::thread::spawn(move || answer(stream, &state));
                    }
                }
            })
        };
        OidcIssuer {
            addr,
            state,
            stopping,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Serves `body` (JSON) at `path` from now on.
    pub fn serve(&self, path: &str, body: impl Into<Vec<u8>>) {
        let mut state = self.state.lock().unwrap();
        state
            .documents
            .insert(path.to_string(), ("200 OK", body.into()));
    }

    /// `path` answers `500 Internal Server Error` from now on.
    pub fn fail(&self, path: &str) {
        let mut state = self.state.lock().unwrap();
        state.documents.insert(
            path.to_string(),
            ("500 Internal Server Error", b"{}".to_vec()),
        );
    }

    /// `path` answers 404 from now on.
    pub fn remove(&self, path: &str) {
        self.state.lock().unwrap().documents.remove(path);
    }

    /// How many GETs `path` has had.
    pub fn gets(&self, path: &str) -> usize {
        let state = self.state.lock().unwrap();
        state.gets.get(path).copied().unwrap_or(0)
    }
}

impl Drop for OidcIssuer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// One request, one answer, then the connection closes.
fn answer(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {}
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("").to_string();
    let body = {
        let mut state = state.lock().unwrap();
        *state.gets.entry(path.clone()).or_default() += 1;
        state.documents.get(&path).cloned()
    };
    let (status, body) = match (method, body) {
        ("GET", Some((status, body))) => (status, body),
        ("GET", None) => ("404 Not Found", b"{}".to_vec()),
        _ => ("405 Method Not Allowed", b"{}".to_vec()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}
