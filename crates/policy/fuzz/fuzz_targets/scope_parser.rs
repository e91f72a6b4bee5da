//! Client bytes into the scope parser: never a panic, and whatever parses prints back to
//! the same scopes; the same bytes as a credential limit must not panic either.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_policy::{parse_scopes, Scope, ScopeLimit};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Several parameter values, split where the input has a NUL.
    let values: Vec<&str> = text.split('\0').collect();
    if let Ok(scopes) = parse_scopes(values.iter().copied()) {
        for scope in &scopes {
            let printed = scope.to_string();
            let again = Scope::parse(&printed).expect("a printed scope parses");
            assert_eq!(&again, scope, "print/parse round trip");
        }
    } else if let Err(error) = parse_scopes(values.iter().copied()) {
        assert!(error.to_string().len() < 512, "error messages stay short");
    }
    if let Ok(limit) = ScopeLimit::parse(text) {
        let again = ScopeLimit::parse(&limit.to_string()).expect("a printed limit parses");
        assert_eq!(again, limit);
    }
});
