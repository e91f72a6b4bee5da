//! `scopegate auth` against a fake registry and token realm that answer whatever a test
//! sets: what the CLI refuses to trust (a token that could drive a terminal, a cache
//! directory others can write, a realm on a private address) and what it tells the user.
//! No Spin here: the fake answers in-process, so these tests run in seconds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use scopegate_harness::{run_with_stdin, Scratch};
use serde_json::json;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// What the fake answers, and what it was asked.
struct State {
    /// The `realm` of the Bearer challenge `/v2/` answers with.
    realm: String,
    /// Status line and JSON body of `/token`.
    token_reply: (&'static str, String),
    /// `METHOD /path?query` of every request, in order.
    requests: Vec<String>,
}

/// A registry that wants a Bearer token (`/v2/` answers 401 with a challenge) and a token
/// realm (`/token`) on one loopback port. Its thread ends with the test process.
struct Fake {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Fake {
    /// A fake whose realm is its own `/token`.
    fn start() -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            realm: format!("http://{addr}/token"),
            token_reply: ("200 OK", json!({"token": jwt("a/b")}).to_string()),
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || answer(stream, &state));
            }
        });
        Fake { addr, state }
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    fn set_realm(&self, realm: String) {
        self.state.lock().unwrap().realm = realm;
    }

    fn answer_token(&self, status: &'static str, body: String) {
        self.state.lock().unwrap().token_reply = (status, body);
    }

    fn token_requests(&self) -> usize {
        let state = self.state.lock().unwrap();
        state
            .requests
            .iter()
            .filter(|r| r.contains(" /token"))
            .count()
    }
}

/// One request, one answer, then the connection closes. A TLS handshake (a client without
/// `--insecure`) gets a plain-HTTP 400, as a plain-HTTP registry would answer it.
fn answer(stream: TcpStream, state: &Mutex<State>) {
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut reader = BufReader::new(&stream);
    let is_tls = reader
        .fill_buf()
        .is_ok_and(|bytes| bytes.first() == Some(&0x16));
    if is_tls {
        let _ = (&stream).write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        return;
    }
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut content_length = 0;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line == "\r\n" || line == "\n" => break,
            Ok(_) => {
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        content_length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
        }
    }
    let mut body = vec![0; content_length];
    let _ = reader.read_exact(&mut body);
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let (status, headers, body) = {
        let mut state = state.lock().unwrap();
        state.requests.push(format!("{method} {target}"));
        if target == "/v2/" {
            let challenge = format!(
                "WWW-Authenticate: Bearer realm=\"{}\",service=\"fake\"\r\n",
                state.realm
            );
            ("401 Unauthorized", challenge, "{}".to_string())
        } else if target.starts_with("/token") {
            let (status, body) = state.token_reply.clone();
            (status, String::new(), body)
        } else {
            ("404 Not Found", String::new(), "{}".to_string())
        }
    };
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = (&stream).write_all(reply.as_bytes());
}

/// An unsigned JWT granting pull on `repository`, valid for five minutes: the CLI decodes
/// the claims only to say what was granted.
fn jwt(repository: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let part = |value: serde_json::Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!(
        "{}.{}.{}",
        part(json!({"alg": "ES256", "typ": "JWT"})),
        part(json!({
            "exp": now + 300,
            "access": [{"type": "repository", "name": repository, "actions": ["pull"]}],
        })),
        URL_SAFE_NO_PAD.encode(b"not a signature")
    )
}

/// HOME, DOCKER_CONFIG and XDG_CACHE_HOME of one user, in a scratch directory.
struct User {
    _scratch: Scratch,
    home: PathBuf,
}

impl User {
    fn new() -> User {
        let scratch = Scratch::new("auth-realm");
        let home = scratch.dir("home");
        User {
            _scratch: scratch,
            home,
        }
    }

    fn cache_dir(&self) -> PathBuf {
        self.home.join("cache/scopegate/tokens")
    }

    fn docker_dir(&self) -> PathBuf {
        self.home.join("docker")
    }

    fn cache_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.cache_dir()) {
            Ok(entries) => entries.map(|entry| entry.unwrap().path()).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// `scopegate ARGS` as this user, stdin fed from `stdin`.
    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_scopegate"));
        command
            .args(args)
            .env("HOME", &self.home)
            .env("DOCKER_CONFIG", self.docker_dir())
            .env("XDG_CACHE_HOME", self.home.join("cache"));
        run_with_stdin(&mut command, stdin)
    }
}

fn shown(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_token_that_could_drive_the_terminal_is_refused_and_never_printed_or_cached() {
    let fake = Fake::start();
    let host = fake.host();
    let user = User::new();
    let hostile = [
        format!("{}\r\nX-Injected: yes", jwt("a/b")),
        format!("{}\u{1b}]0;owned\u{7}\u{1b}[2J", jwt("a/b")),
        "opaque\r\nX-Injected: yes".to_string(),
        "opaque-\u{1b}[31mred".to_string(),
    ];
    for token in &hostile {
        fake.answer_token("200 OK", json!({ "token": token }).to_string());
        for extra in [&[][..], &["--header"][..], &["--json"][..]] {
            let mut args = vec![
                "auth",
                "token",
                "--registry",
                &host,
                "--insecure",
                "--scope",
                "repository:a/b:pull",
            ];
            args.extend_from_slice(extra);
            let output = user.run(&args, None);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{token:?}: {}",
                shown(&output)
            );
            assert_eq!(stdout(&output), "", "{token:?}: {}", shown(&output));
            assert!(
                stderr(&output).contains("answered a token that")
                    && !stderr(&output).contains("X-Injected")
                    && !stderr(&output).contains('\u{1b}'),
                "{token:?}: {}",
                shown(&output)
            );
            assert!(user.cache_files().is_empty(), "{:?}", user.cache_files());
        }
    }
    // `auth login` stores no refresh token that holds a line break.
    fake.answer_token(
        "200 OK",
        json!({"token": jwt("a/b"), "refresh_token": "sgr_x\r\nX-Injected: yes"}).to_string(),
    );
    let output = user.run(
        &[
            "auth",
            "login",
            "--registry",
            &host,
            "--insecure",
            "-u",
            "alice",
            "--password-stdin",
        ],
        Some("alice-password"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert!(
        stderr(&output).contains("answered a refresh token that"),
        "{}",
        shown(&output)
    );
    assert!(!user.docker_dir().join("config.json").exists());
    // The same realm answering a well-formed token: printed, exit 0.
    let good = jwt("a/b");
    fake.answer_token("200 OK", json!({ "token": good }).to_string());
    let output = user.run(
        &[
            "auth",
            "token",
            "--registry",
            &host,
            "--insecure",
            "--scope",
            "repository:a/b:pull",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(stdout(&output), good);
}

/// `auth token --registry FAKE --insecure --scope repository:a/b:pull` as `user`.
fn token_for_a_b(user: &User, fake: &Fake, extra: &[&str]) -> Output {
    let host = fake.host();
    let mut args = vec![
        "auth",
        "token",
        "--registry",
        &host,
        "--insecure",
        "--scope",
        "repository:a/b:pull",
    ];
    args.extend_from_slice(extra);
    user.run(&args, None)
}

#[test]
fn a_cache_directory_others_can_write_is_not_used_and_left_alone() {
    let fake = Fake::start();
    let user = User::new();
    let first = jwt("a/b");
    fake.answer_token("200 OK", json!({ "token": first }).to_string());
    let output = token_for_a_b(&user, &fake, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(stdout(&output), first);
    let files = user.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(mode(&user.cache_dir()), 0o700);

    // Another local user makes the directory 0777 and plants an entry of their own.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(user.cache_dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    let mut planted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let planted_token = jwt("planted/by/someone-else");
    planted["token"] = json!(planted_token);
    std::fs::write(&files[0], planted.to_string()).unwrap();

    let second = jwt("a/b");
    fake.answer_token(
        "200 OK",
        json!({ "token": second, "note": "second" }).to_string(),
    );
    let requests_before = fake.token_requests();
    let output = token_for_a_b(&user, &fake, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_ne!(stdout(&output), planted_token, "{}", shown(&output));
    assert_eq!(stdout(&output), second);
    assert_eq!(fake.token_requests(), requests_before + 1, "fetched anew");
    assert!(
        stderr(&output).contains("warning: not using the token cache")
            && stderr(&output).contains("has mode 777"),
        "{}",
        shown(&output)
    );
    assert_eq!(mode(&user.cache_dir()), 0o777, "never chmod a directory");
    let still: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    assert_eq!(
        still["token"],
        json!(planted_token),
        "nothing written there"
    );

    // A private directory whose entry is a symlink: the link is not followed.
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(user.cache_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let outside = user.home.join("outside.json");
    std::fs::write(&outside, planted.to_string()).unwrap();
    std::fs::remove_file(&files[0]).unwrap();
    std::os::unix::fs::symlink(&outside, &files[0]).unwrap();
    let output = token_for_a_b(&user, &fake, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(stdout(&output), second, "{}", shown(&output));
}

#[test]
fn a_realm_on_another_loopback_port_gets_no_credentials_without_the_flag() {
    let registry = Fake::start();
    let realm = Fake::start();
    registry.set_realm(format!("http://{}/token", realm.host()));
    let host = registry.host();
    let user = User::new();
    let login = |extra: &[&str]| {
        let mut args = vec![
            "auth",
            "login",
            "--registry",
            &host,
            "--insecure",
            "-u",
            "alice",
            "--password-stdin",
        ];
        args.extend_from_slice(extra);
        user.run(&args, Some("alice-password"))
    };
    for output in [token_for_a_b(&user, &registry, &[]), login(&[])] {
        assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
        assert_eq!(stdout(&output), "");
        let message = stderr(&output);
        assert!(
            message.contains(&format!("realm http://{}/token", realm.host()))
                && message.contains("no credentials were sent")
                && message.contains("--allow-private-realm"),
            "{}",
            shown(&output)
        );
    }
    assert_eq!(realm.token_requests(), 0, "the realm was never asked");

    let granted = jwt("a/b");
    realm.answer_token(
        "200 OK",
        json!({"token": granted, "refresh_token": "sgr_fake"}).to_string(),
    );
    let output = token_for_a_b(&user, &registry, &["--allow-private-realm"]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(stdout(&output), granted);
    let output = login(&["--allow-private-realm"]);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert_eq!(realm.token_requests(), 2);
}

#[test]
fn a_plain_http_registry_without_insecure_is_named_once_with_the_hint() {
    let fake = Fake::start();
    let user = User::new();
    let host = fake.host();
    let output = user.run(
        &[
            "auth",
            "token",
            "--registry",
            &host,
            "--scope",
            "repository:a/b:pull",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    let message = stderr(&output);
    assert_eq!(
        message.matches(&host).count(),
        1,
        "the URL once: {}",
        shown(&output)
    );
    assert!(
        message.contains(&format!("https://{host}/v2/: "))
            && message.contains("(a plain-HTTP registry needs --insecure)"),
        "{}",
        shown(&output)
    );
}

#[test]
fn a_refused_stored_login_says_to_log_in_again() {
    let fake = Fake::start();
    let user = User::new();
    std::fs::create_dir_all(user.docker_dir()).unwrap();
    std::fs::write(
        user.docker_dir().join("config.json"),
        json!({"auths": {fake.host(): {
            "auth": base64::engine::general_purpose::STANDARD.encode("alice:"),
            "identitytoken": "sgr_revoked",
        }}})
        .to_string(),
    )
    .unwrap();
    fake.answer_token(
        "400 Bad Request",
        json!({"error": "invalid_grant", "error_description": "invalid credentials or grant"})
            .to_string(),
    );
    let output = token_for_a_b(&user, &fake, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert_eq!(stdout(&output), "");
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "the login stored for {} in the docker config is no longer valid",
            fake.host()
        )) && message.contains(&format!("scopegate auth login --registry {}", fake.host()))
            && message.contains("invalid credentials or grant"),
        "{}",
        shown(&output)
    );
    // A password refused is not a stale login.
    let output = user.run(
        &[
            "auth",
            "token",
            "--registry",
            &fake.host(),
            "--insecure",
            "-u",
            "alice",
            "--password-stdin",
            "--scope",
            "repository:a/b:pull",
        ],
        Some("wrong"),
    );
    assert_eq!(output.status.code(), Some(1), "{}", shown(&output));
    assert!(
        !stderr(&output).contains("no longer valid"),
        "{}",
        shown(&output)
    );
}
