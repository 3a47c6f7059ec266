#!/usr/bin/env python3
"""Data-parallel training on frames a Vulkan producer hands to PyTorch, one process per GPU,
on one host or several: frames zero-copy from Vulkan to torch (extmem, DLPack), gradients
through torch.distributed (NCCL).

Start one process per GPU with the four variables torch.distributed's env:// rendezvous reads
(any launcher that sets them works, torchrun included):

    MASTER_ADDR=host0 MASTER_PORT=29500 WORLD_SIZE=2 RANK=0 LOCAL_RANK=0 \\
        python3 python/examples/distributed_train.py --frames 200
    MASTER_ADDR=host0 MASTER_PORT=29500 WORLD_SIZE=2 RANK=1 LOCAL_RANK=1 \\
        python3 python/examples/distributed_train.py --frames 200

Each such process finds the Vulkan device that is its CUDA device (`extmem caps --json`, same
device UUID) and runs `extmem demo --torch` on it with this script as the consumer: the Vulkan
producer writes every frame on the GPU and the consumer process (this script again, with
--socket) trains on it. Every frame's checksum, computed on the GPU over the bytes consumed, is
checked against the checksum of the bytes the producer wrote (its pattern, extmem._testing.pattern); the
demo's producer checks the consumer's write-back byte for byte. After the last step the model's
parameters are gathered and asserted bit-identical across ranks. Rank 0 prints one line
`DISTRIBUTED {json}` with each GPU's frames per second and all-reduce time per step (counted
after the first step, which sets NCCL's communicator up), then PASS.

NCCL_NVLS_ENABLE is set to 0 when unset: NVLink SHARP (multicast) needs fabric support that not
every host has (NVSwitch with multicast, a matching driver and fabric manager); all-reduce
works without it, over NVLink, PCIe or the network. Set it to 1 where the fabric supports it.
Run once with NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 to make NCCL use its network path, as it
does between hosts.

Needs torch with CUDA, the extmem Python module (crates/extmem-py) and the `extmem` binary
(on PATH, or named by $EXTMEM_BIN).
"""
import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time

FEATURES = 256
BATCH = 64


def launch(args) -> int:
    """One rank's launcher: picks the Vulkan device of this rank's GPU and starts the demo."""
    os.environ.setdefault("NCCL_NVLS_ENABLE", "0")
    for var in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE"):
        if var not in os.environ:
            print(f"distributed_train: {var} is not set (the env:// rendezvous needs MASTER_ADDR, MASTER_PORT, "
                  f"RANK and WORLD_SIZE)", file=sys.stderr)
            return 2
    if "LOCAL_RANK" in os.environ:
        local_rank = int(os.environ["LOCAL_RANK"])
    else:
        import torch

        local_rank = int(os.environ["RANK"]) % max(torch.cuda.device_count(), 1)
    exe = os.environ.get("EXTMEM_BIN") or shutil.which("extmem")
    if not exe:
        print("distributed_train: no extmem binary (put it on PATH or set EXTMEM_BIN)", file=sys.stderr)
        return 2
    caps = json.loads(subprocess.run([exe, "caps", "--json", "--no-nv"], check=True, capture_output=True,
                                     text=True).stdout)
    vulkan = [d["index"] for d in caps["devices"] if d.get("cuda_ordinal") == local_rank]
    if not vulkan:
        print(f"distributed_train: no Vulkan device is CUDA device {local_rank} ({caps.get('cuda_note')}); "
              f"see `extmem caps`", file=sys.stderr)
        return 1
    env = dict(os.environ, EXTMEM_DEVICE=str(vulkan[0]), LOCAL_RANK=str(local_rank),
               EXTMEM_TRAIN_FRAMES=str(args.frames))
    cmd = [exe, "demo", "--torch", os.path.abspath(__file__), "--buffer", "--frames", str(args.frames),
           "--width", str(args.width), "--height", str(args.height)]
    return subprocess.run(cmd, env=env).returncode


def checksum(t):
    """Sum of the bytes and a position-weighted sum (catches shifted or reordered bytes), int64."""
    import torch

    b = t.view(-1).to(torch.int64)
    w = torch.arange(b.numel(), device=b.device, dtype=torch.int64) % 65521 + 1
    return torch.stack([b.sum(), (b * w).sum()])


def train(args) -> int:
    """The consumer the demo starts: trains on every frame, with NCCL between the ranks."""
    import torch
    import torch.distributed as dist

    import extmem

    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    frames = int(os.environ["EXTMEM_TRAIN_FRAMES"])
    torch.cuda.set_device(local_rank)
    device = torch.device("cuda", local_rank)
    # The producer waits for its consumer: connect and import first, then meet the other ranks.
    consumer = extmem.Consumer(args.socket)
    shared = consumer.receive()
    dist.init_process_group("nccl", init_method="env://", timeout=datetime.timedelta(seconds=120))
    frame_bytes = torch.from_dlpack(shared)
    n = frame_bytes.numel()
    assert frame_bytes.device == device, f"the frame is on {frame_bytes.device}, this rank's GPU is {device}"
    assert frame_bytes.data_ptr() == shared.device_ptr, "zero-copy: the tensor is the imported memory"
    need = BATCH * FEATURES
    assert n >= need, f"frames of {n} bytes; one batch needs {need}"

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(FEATURES, 128), torch.nn.ReLU(), torch.nn.Linear(128, 1)).to(device)
    params = list(model.parameters())
    opt = torch.optim.SGD(params, lr=0.05)
    stream = torch.cuda.current_stream().cuda_stream
    allreduce_s = 0.0
    start = time.perf_counter()
    for step in range(frames):
        if step == 1:
            # Step 0 set NCCL's communicator up: the figures count the steps after it.
            torch.cuda.synchronize()
            start = time.perf_counter()
            allreduce_s = 0.0
        frame = consumer.wait_ready(stream=stream)
        if frame != step:
            print(f"[rank {rank}] FAIL: frame {frame} came as step {step}", flush=True)
            return 1
        produced = torch.frombuffer(bytearray(extmem._testing.pattern(n, frame)), dtype=torch.uint8)
        seen, want = checksum(frame_bytes).cpu(), checksum(produced)
        if not torch.equal(seen, want):
            print(f"[rank {rank}] FAIL frame {frame}: checksum {seen.tolist()}, the producer's {want.tolist()}",
                  flush=True)
            return 1
        # Each rank trains on its own slice of the frame, so only the all-reduce keeps the
        # models equal.
        at = (rank * need) % (n - need + 1)
        x = frame_bytes[at:at + need].view(BATCH, FEATURES).float() / 255.0
        back = torch.frombuffer(bytearray(extmem._testing.pattern(n, extmem._testing.writeback_seed(frame))), dtype=torch.uint8)
        frame_bytes.copy_(back.to(device, non_blocking=False))
        consumer.done(frame, stream=stream)

        target = x.mean(dim=1, keepdim=True) * 2.0 - 1.0
        loss = torch.nn.functional.mse_loss(model(x), target)
        opt.zero_grad(set_to_none=False)
        loss.backward()
        flat = torch.cat([p.grad.view(-1) for p in params])
        torch.cuda.synchronize()
        t = time.perf_counter()
        dist.all_reduce(flat)
        torch.cuda.synchronize()
        allreduce_s += time.perf_counter() - t
        flat /= world
        offset = 0
        for p in params:
            p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
            offset += p.numel()
        opt.step()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start

    # Bit-identical parameters on every rank.
    mine = torch.cat([p.detach().view(-1) for p in params])
    every = [torch.empty_like(mine) for _ in range(world)]
    dist.all_gather(every, mine)
    identical = all(torch.equal(every[0], other) for other in every)
    figures = {
        "rank": rank,
        "gpu": torch.cuda.get_device_name(device),
        "host": os.uname().nodename,
        "frames": frames,
        "bytes_per_frame": n,
        "frames_per_s": (frames - 1) / elapsed,
        "allreduce_ms_per_step": allreduce_s / (frames - 1) * 1e3,
        "allreduce_bytes": mine.numel() * mine.element_size(),
        "checksums_checked": frames,
        "final_loss": loss.item(),
    }
    gathered = [None] * world
    dist.all_gather_object(gathered, figures)
    consumer.wait_bye()
    dist.destroy_process_group()
    if rank == 0:
        env = {k: os.environ.get(k) for k in ("NCCL_P2P_DISABLE", "NCCL_SHM_DISABLE", "NCCL_NVLS_ENABLE")}
        print("DISTRIBUTED " + json.dumps({"world_size": world, "nccl_env": env, "ranks": gathered,
                                           "parameters_identical": identical}), flush=True)
    if not identical:
        print(f"[rank {rank}] FAIL: the parameters differ between ranks after {frames} steps", flush=True)
        return 1
    print(f"[rank {rank}] PASS: {frames} frames, every checksum matched the producer's, "
          f"parameters bit-identical on {world} ranks", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", help="(set by extmem demo) the producer's socket: run as the consumer")
    parser.add_argument("--frames", type=int, default=200, help="training steps, one frame each")
    parser.add_argument("--width", type=int, default=512, help="frame width (RGBA8)")
    parser.add_argument("--height", type=int, default=256, help="frame height")
    args = parser.parse_args()
    if args.frames < 2 or args.width < 1 or args.height < 1:
        parser.error("--frames must be 2 or more (the first step sets NCCL up and is not timed); --width and "
                     "--height positive")
    return train(args) if args.socket else launch(args)


if __name__ == "__main__":
    sys.exit(main())
