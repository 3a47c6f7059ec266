#!/usr/bin/env bash
# The multi-GPU checks, on a host with two or more NVIDIA GPUs (no Rust toolchain or Vulkan
# loader needed there): device matching by UUID (also with CUDA_VISIBLE_DEVICES reordered),
# consumers on the other GPU (refused naming both GPUs, peer copies, host memory), the demo on
# every GPU at once (Vulkan, CUDA, PyTorch), `bench --cuda --peer`, and the torch.distributed
# example in both NCCL modes. Every step runs even when one before it failed; each failure is
# reported, and the exit status says whether any failed.
#
# On the build machine:  bash scripts/gpu-check-multi.sh --prepare   (builds into .dev/)
# On the GPU host:       bash scripts/gpu-check-multi.sh             (results in $OUT or .dev/out)
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --prepare ]; then
    # The same binaries (extmem-cuda's multi-GPU tests are among gpu-check.sh's test binaries).
    exec bash scripts/gpu-check.sh --prepare
fi
if [ -f .dev/gpu-check.tar.gz ] && [ ! -f .dev/bin/tests.txt ]; then tar -C .dev -xzf .dev/gpu-check.tar.gz; fi
multi_gpu=".dev/bin/$(awk '$1 == "extmem-cuda" && $2 == "multi_gpu" { print $3 }' .dev/bin/tests.txt 2>/dev/null)"

source scripts/gpu-host-env.sh
x=$PWD/.dev/bin/extmem
failures=()
# run NAME CMD...: runs one step (2 minutes at most), logs it to $out/NAME.log, records a failure.
run() {
    local name=$1; shift
    echo "== $name: $*"
    if timeout 120 "$@" >"$out/$name.log" 2>&1; then
        echo "   ok"
    else
        echo "   FAILED ($?): see $name.log"; tail -n 5 "$out/$name.log" | sed 's/^/   | /'
        failures+=("$name")
    fi
}
# refused NAME WHAT... -- CMD...: the command must fail and its output name every WHAT.
refused() {
    local name=$1; shift
    local want=()
    while [ "$1" != -- ]; do want+=("$1"); shift; done
    shift
    echo "== $name (must be refused): $*"
    if timeout 60 "$@" >"$out/$name.log" 2>&1; then
        echo "   FAILED: accepted"; failures+=("$name"); return
    fi
    for w in "${want[@]}"; do
        [ "$w" != - ] || { echo "   FAILED: a GPU's UUID is unknown (see caps.json)"; failures+=("$name"); return; }
        grep -q "$w" "$out/$name.log" || { echo "   FAILED: the error does not name $w"; failures+=("$name"); return; }
    done
    echo "   ok (refused, naming ${want[*]})"
}

nvidia-smi --query-gpu=index,name,uuid,driver_version --format=csv,noheader | tee "$out/gpus.txt"
nvidia-smi topo -m >"$out/topology.txt" 2>&1 || true
run caps "$x" caps
"$x" caps --json --no-nv >"$out/caps.json" 2>/dev/null
run caps-reordered env CUDA_VISIBLE_DEVICES=1,0 "$x" caps --no-nv
# Vulkan device index and UUID of CUDA devices 0 and 1 (as CUDA numbers them with no
# CUDA_VISIBLE_DEVICES set).
read -r vk0 uuid0 vk1 uuid1 < <(python3 -c 'import json,sys
d = {x["cuda_ordinal"]: x for x in json.load(open(sys.argv[1]))["devices"] if x.get("cuda_ordinal") is not None}
print(*(str(d[i]["index"]) + " " + d[i]["device_uuid"] if i in d else "- -" for i in (0, 1)))' "$out/caps.json" 2>/dev/null || echo "- - - -")
echo "CUDA device 0 = Vulkan device $vk0 ($uuid0); CUDA device 1 = Vulkan device $vk1 ($uuid1)"
if [ "$vk1" = - ]; then
    echo "FAILED: fewer than two GPUs that are Vulkan and CUDA devices; the checks below need two"
    failures+=(two-gpus)
fi

# 1. Device matching, memory on its GPU, consumers on the other GPU (library tests).
echo "== multi-gpu-tests"
if timeout 240 "$multi_gpu" --test-threads=1 --nocapture >"$out/multi-gpu-tests.log" 2>&1; then
    if grep -q SKIPPED "$out/multi-gpu-tests.log"; then
        echo "   FAILED: tests skipped on this host"; grep SKIPPED "$out/multi-gpu-tests.log"; failures+=(multi-gpu-tests)
    else
        grep "^test result" "$out/multi-gpu-tests.log"
    fi
else
    echo "   FAILED"; tail -n 20 "$out/multi-gpu-tests.log"; failures+=(multi-gpu-tests)
fi

# 2. The demo per GPU, then on every GPU at once (Vulkan, CUDA, PyTorch consumers).
for vk in "$vk0" "$vk1"; do
    run "demo-cuda-device$vk" env EXTMEM_DEVICE="$vk" "$x" demo --cuda --frames 20
    run "demo-cuda-device$vk-reordered" env EXTMEM_DEVICE="$vk" CUDA_VISIBLE_DEVICES=1,0 "$x" demo --cuda --frames 20
done
run demo-all-gpus-vulkan "$x" demo --all-gpus --frames 200 --json
run demo-all-gpus-cuda "$x" demo --cuda --all-gpus --frames 200 --json
run demo-all-gpus-torch env PYTHONPATH="$pymod" "$x" demo --torch python/examples/torch_consumer.py --buffer --all-gpus --frames 100 --json
for f in demo-all-gpus-vulkan demo-all-gpus-cuda demo-all-gpus-torch; do
    # The JSON summary is the log's last object (a Python consumer prints lines before it).
    python3 -c 'import json,sys; t=open(sys.argv[1]).read(); print(json.dumps(json.loads(t[t.rindex("\n{\n")+1:] if "\n{\n" in t else t), indent=1))' \
        "$out/$f.log" >"$out/$f.json" 2>/dev/null || true
done

# 3. A CUDA consumer on the other GPU: refused by default naming both GPUs, peer copies when
#    asked, refused naming both when it cannot see the owning GPU.
refused demo-other-gpu-default "$uuid0" "$uuid1" -- env EXTMEM_DEVICE="$vk0" "$x" demo --cuda --consumer-gpu 1 --frames 3
run demo-other-gpu-peer-copy env EXTMEM_DEVICE="$vk0" "$x" demo --cuda --consumer-gpu 1 --peer-copy --frames 100
refused demo-owner-invisible "$uuid0" "$uuid1" -- env EXTMEM_DEVICE="$vk0" CUDA_VISIBLE_DEVICES=1 "$x" demo --cuda --frames 3
refused demo-owner-invisible-peer-copy "$uuid0" "$uuid1" -- env EXTMEM_DEVICE="$vk0" CUDA_VISIBLE_DEVICES=1 "$x" demo --cuda --consumer-gpu 0 --peer-copy --frames 3

# 4. Peer copy against host staging, Vulkan through host memory and same-GPU zero-copy.
run bench-peer "$x" bench --cuda --peer --frames 50
run bench-peer-json "$x" bench --cuda --peer --frames 50 --json
cp "$out/bench-peer-json.log" "$out/bench-peer.json" 2>/dev/null || true

# 5. torch.distributed (NCCL), one process per GPU, rendezvous through the env:// variables;
#    once as configured, once on NCCL's network path.
distributed() {
    local name=$1 port=$2; shift 2
    echo "== $name: $*"
    local pids=() r ok=1
    for r in 0 1; do
        # Each rank in a process group of its own (setsid), so that a failed rank's partner is
        # stopped with everything it started instead of waiting out NCCL's timeout.
        env "$@" MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" WORLD_SIZE=2 RANK=$r LOCAL_RANK=$r \
            EXTMEM_BIN="$x" PYTHONPATH="$pymod" \
            setsid timeout 150 python3 python/examples/distributed_train.py --frames 300 >"$out/$name-rank$r.log" 2>&1 &
        pids+=($!)
    done
    # Polled, so that whichever rank fails first stops the other at once.
    local running=(0 1) still rc
    while [ ${#running[@]} -gt 0 ]; do
        sleep 1
        still=()
        for r in "${running[@]}"; do
            if kill -0 "${pids[$r]}" 2>/dev/null; then still+=("$r"); continue; fi
            wait "${pids[$r]}"; rc=$?
            if [ $rc != 0 ]; then
                echo "   FAILED: rank $r ($rc), see $name-rank$r.log"; tail -n 8 "$out/$name-rank$r.log" | sed 's/^/   | /'; ok=0
                for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
            fi
        done
        running=("${still[@]}")
    done
    grep -h "^DISTRIBUTED " "$out/$name-rank0.log" | sed 's/^DISTRIBUTED //' >"$out/$name.json"
    grep -h "PASS" "$out/$name-rank0.log" "$out/$name-rank1.log" | grep rank || true
    [ $ok = 1 ] && [ -s "$out/$name.json" ] || failures+=("$name")
}
distributed distributed-default 29511
distributed distributed-net 29512 NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1

echo
if [ ${#failures[@]} -eq 0 ]; then
    echo "ALL PASSED (results in $out)"
    exit 0
fi
echo "FAILED: ${failures[*]} (logs in $out)"
exit 1
