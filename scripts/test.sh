#!/usr/bin/env bash
# Runs every test: installs what is missing, builds the workspace (the layer's library and
# manifest land in target/debug), then runs the tests on the system's Vulkan driver (Mesa's
# lavapipe where there is no GPU) with the Khronos validation layer.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh
# The style and lint gate: formatting, clippy and rustdoc warnings fail the run.
cargo fmt --all --check || { echo "tests: formatting differs; run 'cargo fmt --all'" >&2; exit 1; }
cargo clippy --workspace --all-targets --locked -- -D warnings
bash scripts/check-cycles.sh crates/extmem-cli; bash scripts/check-cycles.sh || echo "tests: import cycles in the crates above (not failing the run yet; extmem-cli has none)" >&2
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet
cargo build --workspace --locked
# The Python module as users install it (pip install . in a virtual environment), with numpy for
# the CPU consumer's test; the tests run the freshly built module with this Python.
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv .venv
.venv/bin/pip install -q --upgrade numpy .
.venv/bin/python -c 'import extmem, importlib.resources as r
assert all((r.files("extmem") / f).is_file() for f in ("_extmem.pyi", "py.typed")), "type stubs missing"
print("pip install .: extmem", extmem.__version__, "with its type stubs")'
export EXTMEM_PYTHON="$PWD/.venv/bin/python"
# The wheel as published (manylinux_2_28 through zig, stripped, checked by auditwheel): about a
# minute on 2 cores, most of it the first time.
bash scripts/build-wheel.sh | tail -n 1
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$log"
# The package and install.sh, installed into empty roots and removed again.
bash scripts/test-install.sh 2>&1 | tee -a "$log"
# The crates as crates.io would take them (each packaged and built from its package; about a
# minute on 2 cores the first time).
publish_log="$(mktemp)"
cargo publish --workspace --dry-run --locked --allow-dirty >"$publish_log" 2>&1 ||
    { cat "$publish_log"; rm -f "$publish_log"; echo "tests: cargo publish --workspace --dry-run failed" >&2; exit 1; }
echo "tests: cargo publish --workspace --dry-run: $(grep -c '^ *Uploading' "$publish_log") crates packaged and verified"
rm -f "$publish_log"
# The fuzz targets (fuzz/: wire decoder, import rules, the layer's pNext rewriting), seconds each.
bash scripts/fuzz.sh "${EXTMEM_FUZZ_SECONDS:-5}"
# One closing line for the whole workspace (cargo prints one per test binary).
# Tests that need a GPU (CUDA, external semaphores) pass here after printing a SKIPPED line.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     /SKIPPED/ { g += 1 }
     /^install test: passed/ { inst = 1 }
     END { printf "tests: %d passed, %d failed, %d skipped", p, f, s
           if (g) printf " (%d of the passed skipped their GPU part here: scripts/gpu-check.sh runs them on an NVIDIA GPU)", g
           printf "; install test %s", inst ? "passed" : "FAILED"
           printf "\n" }' "$log"
