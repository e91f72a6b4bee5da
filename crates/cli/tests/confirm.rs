//! Destructive admin commands on a terminal: the question, the answer, `--yes`. Run under
//! `script` (util-linux), which gives the command a pseudo-terminal as stdin. The server
//! address is a closed port: a command that goes ahead fails to connect (and says so),
//! one that was not confirmed never tries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopegate_harness::{free_port, require_program, run_with_stdin};
use std::process::{Command, Output};

/// `scopegate ARGS --server (closed port) --admin-secret x` on a pseudo-terminal, `typed`
/// typed at it.
fn on_a_terminal(args: &[&str], typed: &str) -> (Output, String) {
    let script = require_program("script", "bsdutils");
    let closed = format!("http://{}", free_port());
    let mut line = vec![env!("CARGO_BIN_EXE_scopegate").to_string()];
    line.extend(args.iter().map(|a| a.to_string()));
    line.extend([
        "--server".into(),
        closed,
        "--admin-secret".into(),
        "x".into(),
    ]);
    let mut command = Command::new(script);
    command.args(["-qec", &line.join(" "), "/dev/null"]);
    let output = run_with_stdin(&mut command, Some(typed));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    (output, text)
}

#[test]
fn destructive_commands_ask_on_a_terminal_unless_yes() {
    let commands: [(&[&str], &str); 4] = [
        (
            &["user", "delete", "alice"],
            "Delete user alice with all their API and refresh tokens? [y/N]",
        ),
        (
            &["token", "revoke", "0123456789ab"],
            "Revoke API token 0123456789ab and the refresh tokens issued through it? [y/N]",
        ),
        (
            &["refresh", "revoke", "--account", "alice"],
            "Revoke every refresh token of alice? [y/N]",
        ),
        (
            &["refresh", "revoke", "0123456789ab"],
            "Revoke refresh token 0123456789ab? [y/N]",
        ),
    ];
    for (args, question) in commands {
        let (output, text) = on_a_terminal(args, "n\n");
        assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            text.contains(question) && text.contains("not confirmed; nothing was changed"),
            "{args:?}: {text}"
        );
        assert!(!text.contains("Connection Failed"), "{args:?}: {text}");

        let (output, text) = on_a_terminal(args, "y\n");
        assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            text.contains(question) && text.contains("Connection Failed"),
            "went ahead: {args:?}: {text}"
        );

        let mut with_yes = args.to_vec();
        with_yes.push("--yes");
        let (output, text) = on_a_terminal(&with_yes, "n\n");
        assert_eq!(output.status.code(), Some(1), "{args:?}: {text}");
        assert!(
            !text.contains("[y/N]") && text.contains("Connection Failed"),
            "--yes: {args:?}: {text}"
        );
    }
}
