#!/usr/bin/env bash
# The main job: installs what is missing, builds the layer and the CLI in release (20 frames of
# 1080p with validation on lavapipe, 2 cores: 14.0 s from a debug build, 2.1 s from release),
# and runs the cross-process sharing demo through the layer.
# Extra arguments go to `extmem demo` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --release --locked -p extmem-layer -p extmem-cli
exec target/release/extmem demo "$@"
