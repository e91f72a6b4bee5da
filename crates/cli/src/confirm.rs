//! Asking before a command deletes or revokes something: on a terminal only, so scripts
//! (stdin not a terminal) run as before, and never with `--yes`.

use std::io::{BufRead, IsTerminal as _, Write};

use anyhow::{bail, Context as _, Result};

/// `Ok` when the action described by `question` may go ahead: `yes` (`--yes`) was given,
/// stdin is not a terminal, or the user answered `y`/`yes` on the terminal. Anything else
/// is an error saying nothing was changed.
pub fn confirm(question: &str, yes: bool) -> Result<()> {
    let stdin = std::io::stdin();
    let is_terminal = stdin.is_terminal();
    confirm_with(
        question,
        yes,
        is_terminal,
        &mut stdin.lock(),
        &mut std::io::stderr(),
    )
}

/// [`confirm`] with the terminal test, input and prompt output passed in.
fn confirm_with(
    question: &str,
    yes: bool,
    is_terminal: bool,
    input: &mut dyn BufRead,
    prompt: &mut dyn Write,
) -> Result<()> {
    if yes || !is_terminal {
        return Ok(());
    }
    write!(prompt, "{question} [y/N] ").context("writing the question")?;
    prompt.flush().context("writing the question")?;
    let mut answer = String::new();
    input.read_line(&mut answer).context("reading the answer")?;
    match answer.trim().to_ascii_lowercase().as_str() {
        "y" | "yes" => Ok(()),
        _ => bail!("not confirmed; nothing was changed (--yes skips the question)"),
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

    #[test]
    fn asks_on_a_terminal_only_and_never_with_yes() {
        // (--yes, stdin is a terminal, typed, goes ahead, asked)
        let cases = [
            (false, true, "y\n", true, true),
            (false, true, "YES\n", true, true),
            (false, true, "n\n", false, true),
            (false, true, "\n", false, true),
            (false, true, "", false, true),
            (false, true, "yess\n", false, true),
            (true, true, "n\n", true, false),
            (false, false, "n\n", true, false),
            (true, false, "", true, false),
        ];
        for (yes, is_terminal, typed, goes_ahead, is_asked) in cases {
            let mut prompt = Vec::new();
            let result = confirm_with(
                "Delete user alice?",
                yes,
                is_terminal,
                &mut typed.as_bytes(),
                &mut prompt,
            );
            assert_eq!(result.is_ok(), goes_ahead, "{yes} {is_terminal} {typed:?}");
            let asked = String::from_utf8(prompt).unwrap();
            assert_eq!(
                asked == "Delete user alice? [y/N] ",
                is_asked,
                "{yes} {is_terminal} {typed:?}: {asked:?}"
            );
        }
    }
}
