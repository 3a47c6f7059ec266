#!/usr/bin/env bash
# The main job: installs what is missing, builds the layer and the CLI in release (a debug
# build's pattern checks make the demo several times slower), and runs the cross-process
# sharing demo through the layer.
# Extra arguments go to `extmem demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p extmem-layer -p extmem-cli
exec target/release/extmem demo "$@"
