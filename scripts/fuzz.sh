#!/usr/bin/env bash
# Runs each fuzz target (fuzz/, cargo fuzz with libFuzzer) for SECONDS (default 5), starting
# from the checked-in seeds (fuzz/seeds/<target>); new inputs go to a scratch folder, crashes to
# fuzz/artifacts/<target>/. Longer runs: bash scripts/fuzz.sh 600; some targets only:
# FUZZ_TARGETS="gate_fd gate_foreign" bash scripts/fuzz.sh 60
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-5}"
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install --locked cargo-fuzz
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for t in ${FUZZ_TARGETS:-message_decode import_rules layer_chain pool_checks gate_fd gate_foreign}; do
    mkdir -p "$scratch/$t"
    if ! cargo +nightly fuzz run "$t" "$scratch/$t" "fuzz/seeds/$t" -- -max_total_time="$seconds" >"$scratch/$t.log" 2>&1; then
        tail -n 60 "$scratch/$t.log" >&2
        echo "fuzz: $t failed (a build error above, or a crash: its input is in fuzz/artifacts/$t/)" >&2
        exit 1
    fi
    runs=$(grep -E '^Done [0-9]+ runs' "$scratch/$t.log" | tail -1)
    echo "fuzz: $t: $runs ($(grep -oE 'exec/s: [0-9]+' "$scratch/$t.log" | tail -1))"
done
echo "fuzz: no crash in ${seconds} s per target"
