//! The shipped WASI 0.2 build is the Wizer snapshot of the wasm32-wasip1
//! module: `spin build` ran the module's `wizer.initialize` (Wizer removes
//! that export from what it writes), and the snapshot's memory holds more
//! initialised data than the module's (P-256's base-point table, ~25 KiB,
//! among it). The figures of what it buys are in BENCHMARKS.md.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use scopegate_harness::repository_root;
use wasmparser::{Parser, Payload};

/// (exports, bytes of active data segments) of a core module.
fn exports_and_data(path: &std::path::Path) -> (Vec<String>, usize) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut exports = Vec::new();
    let mut data = 0;
    for payload in Parser::new(0).parse_all(&bytes) {
        match payload.unwrap() {
            Payload::ExportSection(reader) => {
                for export in reader {
                    exports.push(export.unwrap().name.to_string());
                }
            }
            Payload::DataSection(reader) => {
                for segment in reader {
                    data += segment.unwrap().data.len();
                }
            }
            _ => {}
        }
    }
    (exports, data)
}

#[test]
fn the_shipped_module_is_the_snapshot_of_its_initialisation() {
    let root = repository_root();
    scopegate_harness::spin::build(&root.join("spin.toml"));
    let release = root.join("target/wasm32-wasip1/release");
    let (before, data_before) = exports_and_data(&release.join("scopegate.wasm"));
    let (after, data_after) = exports_and_data(&release.join("scopegate.snapshot.wasm"));
    assert!(
        before.iter().any(|name| name == "wizer.initialize"),
        "{before:?}"
    );
    assert!(
        !after.iter().any(|name| name == "wizer.initialize"),
        "{after:?}"
    );
    // The entry points Spin calls are still there.
    for export in before.iter().filter(|name| name.starts_with("wasi:http")) {
        assert!(after.contains(export), "{export} lost");
    }
    assert!(
        data_after >= data_before + 20 * 1024,
        "the snapshot adds {} bytes of data",
        data_after.saturating_sub(data_before)
    );
}
