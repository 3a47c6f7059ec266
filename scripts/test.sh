#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the workspace (the layer's library and
# manifest land in target/debug), then runs the tests on the system's Vulkan driver (Mesa's
# lavapipe where there is no GPU) with the Khronos validation layer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
cargo build --workspace --locked
cargo test --workspace --locked
