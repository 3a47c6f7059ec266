#!/usr/bin/env bash
# Runs the layer's and the library's tests, the demo and the benchmarks on any machine with an
# NVIDIA GPU, even one without a Rust toolchain or Vulkan loader: the binaries are built on a
# build machine and copied over with the repository.
#
# On the build machine:  bash scripts/gpu-check.sh --prepare   (builds into .dev/)
# On the GPU machine:    bash scripts/gpu-check.sh             (writes results to $OUT or .dev/out)
#                        bash scripts/gpu-check.sh --no-bench  (tests and demos only)
#                        bash scripts/gpu-check.sh --pool      (the pool's tests and `bench --pool` only)
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --prepare ]; then
    cargo build --release --workspace --locked
    rm -rf .dev/bin && mkdir -p .dev/bin/deps .dev/debs
    cp target/release/extmem target/release/extmem-hostile-peer target/release/libVkLayer_extmem.so target/release/VkLayer_extmem.json .dev/bin/
    # Test and bench binaries, found from cargo's JSON messages.
    cargo test --release --workspace --locked --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("nv_layer", "sentinel_sweep", "external_marking", "validation_orders", "handoff", "wire_format", "validation_is_heard", "cuda", "cuda_export", "hardening", "hostile_peer", "socket_folder", "app_device", "vulkano", "textures", "pool", "pool_wire", "cuda_pool", "hostile_cuda"):
        print(m["executable"])' | xargs -I{} cp {} .dev/bin/deps/
    cargo bench -p extmem-layer --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["bench"]:
        print(m["executable"])' | xargs -I{} cp {} .dev/bin/deps/
    # The Python package laid out by hand (python/extmem around the compiled module), the fallback.
    mkdir -p .dev/bin/python/extmem && cp python/extmem/* .dev/bin/python/extmem/
    cp target/release/libextmem.so .dev/bin/python/extmem/_extmem.abi3.so
    # The Python module as users install it: an abi3 wheel built by maturin from pyproject.toml.
    python3 -m maturin --version >/dev/null 2>&1 || python3 -m pip install -q maturin
    rm -rf .dev/wheels target/wheels && python3 -m maturin build --release --strip
    mkdir -p .dev/wheels && cp target/wheels/extmem-*.whl .dev/wheels/
    rm -rf .dev/bin/implicit && cp -r target/release/implicit .dev/bin/implicit
    cc -std=c11 -O1 -o .dev/bin/nv_client tests/c/nv_client.c -lvulkan
    cargo build --release -p extmem --example submit_cost && cp target/release/examples/submit_cost .dev/bin/
    cargo build --release -p extmem-layer --example external_requirements && cp target/release/examples/external_requirements .dev/bin/
    cargo build --release -p extmem-cuda --example frame_ring && cp target/release/examples/frame_ring .dev/bin/
    # extmem inside other programs' Vulkan: an ash program's own device, and a wgpu consumer.
    cargo build --release -p extmem --example ash_own_device && cp target/release/examples/ash_own_device .dev/bin/
    cargo build --release -p extmem-wgpu --example wgpu_consumer && cp target/release/examples/wgpu_consumer .dev/bin/
    cp /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf .dev/bin/ 2>/dev/null || true
    strip .dev/bin/extmem .dev/bin/extmem-hostile-peer .dev/bin/deps/* .dev/bin/libVkLayer_extmem.so .dev/bin/python/extmem/_extmem.abi3.so .dev/bin/submit_cost .dev/bin/frame_ring .dev/bin/external_requirements .dev/bin/ash_own_device .dev/bin/wgpu_consumer
    if [ ! -e .dev/debs/libvulkan1_*.deb ]; then
        o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
        mkdir -p /tmp/amd64/partial && apt-get $o update -qq
        (cd .dev/debs && apt-get $o download libvulkan1 vulkan-validationlayers libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
    fi
    du -sh .dev
    exit 0
fi

source scripts/gpu-host-env.sh
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$out/gpu.txt" || true
status=0
run() { echo "== $*" >&2; "$@" || { echo "FAILED ($?): $*"; status=1; }; }
echo "Python module from $pymod"
if [ "${1:-}" = --pool ]; then
    # The pool: its tests, then pooled hand-offs beside today's (step-timed) for Vulkan and CUDA.
    for t in .dev/bin/deps/pool-* .dev/bin/deps/pool_wire-* .dev/bin/deps/cuda_pool-* .dev/bin/deps/hostile_cuda-*; do
        run "$t" --test-threads=1
    done
    run .dev/bin/extmem bench --pool --json --png "$out/bench-pool.png" > "$out/bench-pool.json"
    run .dev/bin/extmem bench --pool --sizes 4K,1G --repeat 5 > "$out/bench-pool.txt"
    run env PYTHONPATH=$pymod .dev/bin/extmem bench --pool --torch python/examples/torch_pool_consumer.py \
        --json > "$out/bench-pool-torch.json"
    exit $status
fi
run .dev/bin/extmem caps
run .dev/bin/extmem caps --json > "$out/caps.json"
# Does marking a resource external change its memory requirements on this driver? (The layer
# marks the buffers and images of VK_NV_external_memory devices; see README.)
run .dev/bin/external_requirements | tee "$out/external-requirements.txt" | tail -n 1
# The hostile-peer test starts this program as its peer (its build path does not exist here).
export EXTMEM_HOSTILE_PEER="$PWD/.dev/bin/extmem-hostile-peer"
for t in .dev/bin/deps/nv_layer-* .dev/bin/deps/sentinel_sweep-* .dev/bin/deps/external_marking-* .dev/bin/deps/validation_orders-* .dev/bin/deps/handoff-* .dev/bin/deps/wire_format-* .dev/bin/deps/validation_is_heard-* .dev/bin/deps/cuda-* .dev/bin/deps/hardening-* .dev/bin/deps/hostile_peer-* .dev/bin/deps/hostile_cuda-* .dev/bin/deps/socket_folder-*; do
    run "$t" --test-threads=1
done
# extmem in an ash program's own device, a vulkano allocator's image, a wgpu consumer.
for t in .dev/bin/deps/app_device-* .dev/bin/deps/vulkano-* .dev/bin/deps/textures-*; do
    run "$t" --test-threads=1
done
run .dev/bin/ash_own_device
run .dev/bin/wgpu_consumer
run .dev/bin/extmem run --validate -- .dev/bin/nv_client --export --require-global
run .dev/bin/extmem run --explicit -- .dev/bin/nv_client
run .dev/bin/extmem demo --validate
run .dev/bin/extmem demo --validate --sync semaphore --frames 20
run .dev/bin/extmem demo --validate --khr --buffer --sync host --frames 20
run .dev/bin/extmem demo --validate --frames 100 --json > "$out/demo.json"
run .dev/bin/extmem demo --cuda --frames 20
run .dev/bin/extmem demo --cuda --sync host --frames 5
run .dev/bin/extmem demo --cuda --queue transfer --frames 20
run .dev/bin/extmem demo --validate --queue transfer --sync semaphore --frames 5
run .dev/bin/extmem demo --validate --host-memory --frames 5
run .dev/bin/extmem demo --host-memory --cuda --frames 5
run env PYTHONPATH=$pymod .dev/bin/extmem demo --torch python/examples/torch_consumer.py --frames 10
run env PYTHONPATH=$pymod .dev/bin/extmem demo --torch python/examples/torch_consumer.py --buffer --sync host --frames 3
run .dev/bin/extmem demo --gl --validate --frames 20
run .dev/bin/extmem demo --gl --sync host --frames 5
run .dev/bin/extmem demo --gl --buffer --frames 5
run env PYTHONPATH=$pymod .dev/bin/extmem demo --torch-producer python/examples/torch_producer.py --frames 5
run env PYTHONPATH=$pymod .dev/bin/extmem demo --torch-producer python/examples/torch_producer.py --sync host --frames 3
run .dev/bin/frame_ring 1000 general
run .dev/bin/frame_ring 1000 transfer
if [ "${1:-}" = --no-bench ]; then
    exit $status
fi
run .dev/bin/submit_cost
# PyTorch -> Vulkan: first hand-off and per-frame round trip (4 bytes touched), semaphore and host,
# for bench --cuda's Vulkan -> CUDA figures below (the same crossing the other way).
# The round trips share a 4 KiB buffer (the hand-off's own cost); the first hand-off is also
# taken at 8 MiB (1080p RGBA) and 256 MiB.
tp() { run env PYTHONPATH=$pymod .dev/bin/extmem demo --torch-producer python/examples/torch_producer.py "$@"; }
for sync in semaphore host; do
    tp --sync $sync --width 1024 --height 1 --frames 2 --bench 1000 > "$out/torch-producer-$sync.txt"
done
tp --frames 1 > "$out/torch-producer-8M.txt"
tp --frames 1 --width 8192 --height 8192 > "$out/torch-producer-256M.txt"
cat "$out"/torch-producer-*.txt
run .dev/bin/extmem bench --cuda --json --png "$out/bench-cuda.png" > "$out/bench-cuda.json"
run .dev/bin/extmem bench --json --png "$out/bench-vulkan.png" > "$out/bench-khr.json"
run .dev/bin/extmem bench --nv --sizes 4K,16M,1G --json > "$out/bench-nv.json"
run .dev/bin/extmem bench --pool --json --png "$out/bench-pool.png" > "$out/bench-pool.json"
for b in .dev/bin/deps/layer-*; do
    run "$b" --bench --warm-up-time 1 --measurement-time 3 2>&1 | tee "$out/layer-bench.txt"
done
exit $status
