#!/usr/bin/env bash
# The test command (README.md): formatting, lints as errors, every test (unit, golden
# diagnostics, JSON snapshots, property/fuzz, CLI, and the keepalived differential test).
set -euo pipefail
cd "$(dirname "$0")"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
