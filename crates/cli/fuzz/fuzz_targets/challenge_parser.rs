//! Server bytes into the `WWW-Authenticate` parser: never a panic, errors stay short, and
//! whatever parses prints back to the same challenges.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser's own file, compiled as it is in `scopegate_cli::challenge` (std only).
#[allow(dead_code)] // the target uses only the parser and the printer
#[path = "../../src/challenge.rs"]
mod challenge;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Several header lines, split where the input has a newline.
    match challenge::parse_lines(text.split('\n')) {
        Ok(challenges) => {
            let printed = challenge::print(&challenges);
            let again = challenge::parse(&printed).expect("a printed challenge list parses");
            assert_eq!(again, challenges, "print/parse round trip of {printed:?}");
        }
        Err(error) => assert!(error.to_string().len() < 256, "error messages stay short"),
    }
});
