#!/usr/bin/env bash
# Runs each fuzz target of scopegate-policy for SECONDS seconds (default 30); fails on any
# crash. Installs cargo-fuzz if missing. Works on stable Rust: RUSTC_BOOTSTRAP=1 lets
# cargo-fuzz pass its -Z flags, and no sanitizer is used (those need a nightly std).
set -euo pipefail

seconds="${1:-30}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for target in scope_parser policy_loader; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    # Seed the corpus with real inputs so the fuzzer starts from valid shapes.
    case "$target" in
        scope_parser)
            printf 'repository:team/app:pull,push' >"$corpus/seed-basic"
            printf 'repository:localhost:5000/team/app:pull repository(plugin):a/b:*\0registry:catalog:*' >"$corpus/seed-list"
            ;;
        policy_loader)
            for file in ../../../policies/*.toml; do
                cp "$file" "$corpus/seed-$(basename "$file")"
            done
            ;;
    esac
    echo "fuzzing $target for ${seconds}s"
    cargo fuzz run --sanitizer none "$target" "$corpus" -- \
        -max_total_time="$seconds" -max_len=4096 -print_final_stats=1
done
