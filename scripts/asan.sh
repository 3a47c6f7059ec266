#!/usr/bin/env bash
# The library's (the gate, the pool, the transport), the layer's and the consumers' hostile
# tests (the hostile peer, the GL consumer on llvmpipe) under AddressSanitizer (nightly Rust,
# -Zsanitizer=address). Run it whenever unsafe code changes:
#     bash scripts/asan.sh
# Builds into target/x86_64-unknown-linux-gnu/ (apart from the normal build). The drivers and
# the loader are not instrumented; leaks they keep until exit are suppressed (scripts/lsan.supp),
# everything in extmem's own code is reported. The C client test is left out (a C program
# cannot load an instrumented layer without the sanitizer's runtime).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
target=x86_64-unknown-linux-gnu
# --export-dynamic: the instrumented layer, which the Vulkan loader dlopens, finds the
# sanitizer's runtime in the test executable.
export RUSTFLAGS="-Zsanitizer=address -Clink-arg=-Wl,--export-dynamic"
export RUSTDOCFLAGS="-Zsanitizer=address"
# fast_unwind_on_malloc=0: stacks through lavapipe's JIT-compiled code reach the driver's
# library, so that the suppressions match.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_odr_violation=0:fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$PWD/scripts/lsan.supp:print_suppressions=0"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
cargo +nightly build --target "$target" -p extmem-layer -p extmem-testkit --locked
# tests/examples.rs runs the examples as programs.
cargo +nightly build --target "$target" -p extmem --examples --locked
cargo +nightly test --target "$target" --locked -p extmem --lib --tests
cargo +nightly test --target "$target" --locked -p extmem-layer --lib --test nv_layer
cargo +nightly test --target "$target" --locked -p extmem-testkit --tests
cargo +nightly test --target "$target" --locked -p extmem-gl --test hostile_llvmpipe
echo "asan: no error reported"
