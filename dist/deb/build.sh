#!/usr/bin/env bash
# Builds the Debian package (cargo-deb) into $CARGO_TARGET_DIR/debian/ (default target/):
# the release binary (the BPF programs are inside it), the systemd unit and its drop-ins,
# the manual pages and shell completions generated from the binary itself, the
# /etc/default/rvs conffile, and the keepalived/ipvsadm compatibility links in
# /usr/lib/rvs/compat (not on PATH: they never shadow the real packages; docs/operations.md).
# Needs cargo-deb (`cargo install --locked cargo-deb`); prints the .deb's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-target}
cargo build --release --locked -p rvs
gen="$target/release/dist"
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/completions"
"$target/release/rvs" manpages "$gen/man" >/dev/null
gzip -9n "$gen"/man/*
for sh in bash zsh fish; do
  "$target/release/rvs" completions "$sh" > "$gen/completions/rvs.$sh"
done
# Stripped: the release profile keeps line tables for backtraces (debug = 1), which
# would make the package ten times larger.
cargo deb -p rvs --no-build --locked --strip "$@" | tail -n 1
