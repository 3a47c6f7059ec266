#!/usr/bin/env bash
# Runs every test binary of the workspace, the demos and the benchmarks on a machine with an
# NVIDIA GPU, even one without a Rust toolchain or Vulkan loader: the binaries are built on a
# build machine and copied over with the repository (.dev/, one 30 MB archive: carry `.dev`).
#
# On the build machine:  bash scripts/gpu-check.sh --prepare      (builds into .dev/)
# On the GPU machine:    bash scripts/gpu-check.sh [--part P]...  (P: tests, demos, bench, pool;
#                                                                  default tests demos bench)
#                        bash scripts/gpu-check.sh --no-bench     (tests and demos)
#
# The test binaries are the ones cargo built (its JSON messages, listed in .dev/bin/tests.txt):
# no list is kept here. Each part stops starting steps after 9 minutes (EXTMEM_PART_SECONDS),
# so one part fits a 10-minute run; steps not started are reported as such. Results: every
# step's output in $OUT (or .dev/out), and a summary per part in bench/results/<gpu>.md (h200.md
# on an H200; the file is copied to $OUT too), where each part replaces its own section.
set -euo pipefail
cd "$(dirname "$0")/.."

# The artifacts of a cargo command (`--message-format=json` on stdin) whose target kind is $1,
# as "crate-folder name path" lines.
artifacts() {
    python3 -c 'import json, sys
kind = sys.argv[1]
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == [kind]:
        print(m["manifest_path"].split("/")[-2], m["target"]["name"], m["executable"])' "$1"
}

if [ "${1:-}" = --prepare ]; then
    cargo build --release --workspace --locked
    [ ! -f .dev/gpu-check.tar.gz ] || tar -C .dev -xzf .dev/gpu-check.tar.gz debs 2>/dev/null || true
    rm -rf .dev/bin .dev/gpu-check.tar.gz && mkdir -p .dev/bin/deps .dev/bin/examples .dev/debs
    cp target/release/extmem target/release/extmem-hostile-peer target/release/libVkLayer_extmem.so \
        target/release/VkLayer_extmem.json target/release/lib_extmem.so .dev/bin/
    # Every integration test binary and every example (cargo test builds both).
    cargo test --release --workspace --locked --no-run --message-format=json 2>/dev/null >.dev/cargo-test.json
    artifacts test <.dev/cargo-test.json >.dev/tests.raw
    artifacts example <.dev/cargo-test.json >.dev/examples.raw
    cargo bench -p extmem-layer --locked --no-run --message-format=json 2>/dev/null | artifacts bench >.dev/benches.raw
    : >.dev/bin/tests.txt
    while read -r package name path; do
        cp "$path" .dev/bin/deps/
        echo "$package $name deps/$(basename "$path")" >>.dev/bin/tests.txt
    done <.dev/tests.raw
    while read -r _ name path; do cp "$path" ".dev/bin/examples/$name"; done <.dev/examples.raw
    while read -r _ name path; do cp "$path" ".dev/bin/deps/"; echo "$(basename "$path")" >.dev/bin/bench-$name.txt; done <.dev/benches.raw
    rm -f .dev/cargo-test.json .dev/*.raw
    # Tests find their sources and the binaries through paths cargo compiled in (this tree):
    # the GPU machine recreates them (scripts/gpu-host-env.sh).
    pwd >.dev/bin/build-root
    # The Python package laid out by hand (python/extmem around the compiled module), the fallback.
    mkdir -p .dev/bin/python/extmem && cp python/extmem/* .dev/bin/python/extmem/
    cp target/release/lib_extmem.so .dev/bin/python/extmem/_extmem.abi3.so
    # The Python module as users install it: the manylinux wheel.
    bash scripts/build-wheel.sh | tail -n 1
    rm -rf .dev/wheels && mkdir -p .dev/wheels && cp target/wheels/extmem-*.whl .dev/wheels/
    rm -rf .dev/bin/implicit && cp -r target/release/implicit .dev/bin/implicit
    cc -std=c11 -O1 -o .dev/bin/nv_client tests/c/nv_client.c -lvulkan
    cp /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf .dev/bin/ 2>/dev/null || true
    find .dev/bin -type f \( -perm -u+x -o -name '*.so' \) ! -name '*.py' -exec strip {} + 2>/dev/null || true
    if [ ! -e .dev/debs/libvulkan1_*.deb ]; then
        o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
        mkdir -p /tmp/amd64/partial && apt-get $o update -qq
        (cd .dev/debs && apt-get $o download libvulkan1 vulkan-validationlayers libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi
    echo "gpu-check: $(wc -l <.dev/bin/tests.txt) test binaries, $(ls .dev/bin/examples | wc -l) examples"
    # One archive (the binaries are 65 MB unpacked, 30 MB packed); the GPU machine unpacks it.
    rm -f .dev/gpu-check.tar.gz
    tar -C .dev -czf .dev/gpu-check.tar.gz bin wheels debs
    rm -rf .dev/bin .dev/wheels .dev/debs/*.deb
    du -sh .dev
    exit 0
fi

parts=()
while (($#)); do
    case "$1" in
        --part) case "${2:-}" in tests|demos|bench|pool) parts+=("$2") ;; *) echo "gpu-check: --part is tests, demos, bench or pool, not '${2:-}'" >&2; exit 2 ;; esac; shift 2 ;;
        --no-bench) parts+=(tests demos); shift ;;
        --pool) parts+=(pool); shift ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
done
((${#parts[@]})) || parts=(tests demos bench)
if [ -f .dev/gpu-check.tar.gz ] && [ ! -f .dev/bin/tests.txt ]; then tar -C .dev -xzf .dev/gpu-check.tar.gz; fi
[ -f .dev/bin/tests.txt ] || { echo "gpu-check: .dev/bin/tests.txt is missing: run 'bash scripts/gpu-check.sh --prepare' on the build machine" >&2; exit 1; }

source scripts/gpu-host-env.sh
gpu="$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -n 1 || true)"
echo "${gpu:-no NVIDIA GPU}" | tee "$out/gpu.txt"
# bench/results/<model>.md: "NVIDIA H200, 570.x" -> h200.md.
model="$(sed 's/,.*//; s/^NVIDIA //; s/ .*//' <<<"${gpu:-gpu}" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9-')"
results="bench/results/${model:-gpu}.md"
echo "Python module from $pymod"
export EXTMEM_HOSTILE_PEER="$PWD/.dev/bin/extmem-hostile-peer"
x=.dev/bin/extmem
budget="${EXTMEM_PART_SECONDS:-540}"
status=0

# step NAME CMD...: runs one step unless the part's time is spent (5 minutes at most, and never
# past the part's time and 50 s); its output goes to $out/NAME.log, its summary line to the
# part's table.
step() {
    local name="$1"; shift
    local elapsed=$(($(date +%s) - part_start))
    if ((elapsed >= budget)); then
        echo "| $name | not run: the part's $budget s were spent | |" >>"$table"; status=1; return
    fi
    echo "== $name: $*" >&2
    local t0 rc=0 summary
    t0=$(date +%s)
    local limit=$((budget + 50 - elapsed))
    ((limit < 300)) || limit=300
    timeout "$limit" "$@" >"$out/$name.log" 2>&1 </dev/null || rc=$?
    local secs=$(($(date +%s) - t0))
    summary="$(grep -h '^test result:' "$out/$name.log" | sed 's/^test result: \(ok\|FAILED\)\. //; s/; 0 measured//; s/; 0 filtered out//; s/; finished in.*//' | paste -sd' ' || true)"
    local skipped
    skipped="$(grep -c SKIPPED "$out/$name.log" || true)"
    ((skipped == 0)) || summary="$summary ($skipped SKIPPED)"
    if ((rc == 0)); then
        echo "| $name | ok ${summary} | $secs |" >>"$table"
    else
        echo "FAILED ($rc): $name" >&2; tail -n 15 "$out/$name.log" >&2
        echo "| $name | **FAILED** ($rc) ${summary} | $secs |" >>"$table"; status=1
    fi
}
# bench_step NAME FILE CMD...: a step whose standard output is a result file in $out.
bench_step() {
    local name="$1" file="$2"; shift 2
    step "$name" sh -c '"$@" >"$0"' "$out/$file" "$@"
}

part_tests() {
    step caps "$x" caps
    bench_step caps-json caps.json "$x" caps --json
    # Every test binary cargo built, one test at a time (tests of one binary share the GPU).
    while read -r package name file; do
        step "test-$package-$name" ".dev/bin/$file" --test-threads=1
    done <.dev/bin/tests.txt
}

part_demos() {
    step external-requirements .dev/bin/examples/external_requirements
    for e in ash_own_device wgpu_consumer; do step "example-$e" ".dev/bin/examples/$e"; done
    step run-nv-client "$x" run --validate -- .dev/bin/nv_client --export --require-global
    step run-explicit "$x" run --explicit -- .dev/bin/nv_client
    step demo "$x" demo --validate
    step demo-semaphore "$x" demo --validate --sync semaphore --frames 20
    step demo-khr-buffer-host "$x" demo --validate --khr --buffer --sync host --frames 20
    bench_step demo-json demo.json "$x" demo --validate --frames 100 --json
    step demo-cuda "$x" demo --cuda --frames 20
    step demo-cuda-host "$x" demo --cuda --sync host --frames 5
    step demo-cuda-transfer "$x" demo --cuda --queue transfer --frames 20
    step demo-transfer-semaphore "$x" demo --validate --queue transfer --sync semaphore --frames 5
    step demo-host-memory "$x" demo --validate --host-memory --frames 5
    step demo-host-memory-cuda "$x" demo --host-memory --cuda --frames 5
    step demo-torch env PYTHONPATH="$pymod" "$x" demo --torch python/examples/torch_consumer.py --frames 10
    step demo-torch-buffer-host env PYTHONPATH="$pymod" "$x" demo --torch python/examples/torch_consumer.py --buffer --sync host --frames 3
    step demo-gl "$x" demo --gl --validate --frames 20
    step demo-gl-host "$x" demo --gl --sync host --frames 5
    step demo-gl-buffer "$x" demo --gl --buffer --frames 5
    step demo-torch-producer env PYTHONPATH="$pymod" "$x" demo --torch-producer python/examples/torch_producer.py --frames 5
    step demo-torch-producer-host env PYTHONPATH="$pymod" "$x" demo --torch-producer python/examples/torch_producer.py --sync host --frames 3
    step frame-ring-general .dev/bin/examples/frame_ring 1000 general
    step frame-ring-transfer .dev/bin/examples/frame_ring 1000 transfer
}

part_bench() {
    bench_step submit-cost submit-cost.txt .dev/bin/examples/submit_cost
    # PyTorch -> Vulkan: first hand-off and per-frame round trip (4 bytes touched), semaphore and
    # host; the first hand-off also at 8 MiB (1080p RGBA) and 256 MiB.
    local tp=(env PYTHONPATH="$pymod" "$x" demo --torch-producer python/examples/torch_producer.py)
    for sync in semaphore host; do
        bench_step "torch-producer-$sync" "torch-producer-$sync.txt" "${tp[@]}" --sync $sync --width 1024 --height 1 --frames 2 --bench 1000
    done
    bench_step torch-producer-8M torch-producer-8M.txt "${tp[@]}" --frames 1
    bench_step torch-producer-256M torch-producer-256M.txt "${tp[@]}" --frames 1 --width 8192 --height 8192
    bench_step bench-cuda bench-cuda.json "$x" bench --cuda --json --png "$out/bench-cuda.png"
    bench_step bench-khr bench-khr.json "$x" bench --json --png "$out/bench-vulkan.png"
    bench_step bench-nv bench-nv.json "$x" bench --nv --sizes 4K,16M,1G --json
    bench_step bench-pool bench-pool.json "$x" bench --pool --json --png "$out/bench-pool.png"
    local b
    for b in .dev/bin/bench-*.txt; do
        [ -e "$b" ] || continue
        bench_step "$(basename "$b" .txt)" "$(basename "$b" .txt).txt" ".dev/bin/deps/$(cat "$b")" --bench --warm-up-time 1 --measurement-time 3
    done
}

part_pool() {
    # The pool: its tests, then pooled hand-offs beside today's (step-timed), Vulkan and CUDA.
    while read -r package name file; do
        case "$name" in pool*|cuda_pool*) step "test-$package-$name" ".dev/bin/$file" --test-threads=1 ;; esac
    done <.dev/bin/tests.txt
    bench_step bench-pool bench-pool.json "$x" bench --pool --json --png "$out/bench-pool.png"
    bench_step bench-pool-sizes bench-pool.txt "$x" bench --pool --sizes 4K,1G --repeat 5
    bench_step bench-pool-torch bench-pool-torch.json env PYTHONPATH="$pymod" "$x" bench --pool --torch python/examples/torch_pool_consumer.py --json
}

# Replaces the part's section of the results file (between its two markers), or appends it.
record() {
    local part="$1" section="$2"
    mkdir -p "$(dirname "$results")"
    [ -f "$results" ] || printf '# GPU checks on %s\n\nWritten by `scripts/gpu-check.sh` (one section per part; each run of a part replaces its section).\n' "${gpu:-a machine without an NVIDIA GPU}" >"$results"
    python3 - "$results" "$part" "$section" <<'EOF'
import sys
path, part, section = sys.argv[1:]
text = open(path).read()
begin, end = f"<!-- part {part} -->", f"<!-- end of part {part} -->"
block = f"{begin}\n{open(section).read().rstrip()}\n{end}"
if begin in text and end in text:
    text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
else:
    text = text.rstrip() + "\n\n" + block + "\n"
open(path, "w").write(text.rstrip() + "\n")
EOF
}

for part in "${parts[@]}"; do
    part_start=$(date +%s)
    table="$out/part-$part.md"
    {
        echo "## Part \`$part\`: $(date -u '+%Y-%m-%d %H:%M UTC'), ${gpu:-no NVIDIA GPU}"
        echo
        echo "| step | result | seconds |"
        echo "|---|---|---|"
    } >"$table"
    "part_$part"
    echo >>"$table"
    echo "Part \`$part\`: $(($(date +%s) - part_start)) s. Outputs: \`$out/<step>.log\`." >>"$table"
    if [ "$part" = bench ] || [ "$part" = pool ]; then
        for f in "$out"/*.txt; do
            [ -s "$f" ] || continue
            case "$(basename "$f")" in gpu.txt|external-requirements.txt) continue ;; esac
            printf '\n<details><summary>%s</summary>\n\n```\n%s\n```\n</details>\n' "$(basename "$f")" "$(tail -n 40 "$f")" >>"$table"
        done
    fi
    record "$part" "$table"
done
cp "$results" "$out/"
echo "gpu-check: results in $results (and $out/$(basename "$results"))"
exit $status
