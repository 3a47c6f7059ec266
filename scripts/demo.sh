#!/usr/bin/env bash
# The main job: installs what is missing, builds, and runs the cross-process sharing demo
# through the layer. Extra arguments go to `extmem demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --workspace --locked --bins --lib
exec target/debug/extmem demo "$@"
