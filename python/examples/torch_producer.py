#!/usr/bin/env python3
"""The PyTorch producer of `extmem demo --torch-producer`: PyTorch fills CUDA memory that a
Vulkan process imports and uses without a copy (NVIDIA only), frame after frame, every byte
checked on both sides.

Run it through the demo:  extmem demo --torch-producer python/examples/torch_producer.py
(needs torch with CUDA and the extmem module: `pip install .` from the repository root).
With --bench N it then times N more round trips that touch 4 bytes each (the hand-off's own cost)
and prints a JSON line with the first hand-off and the per-frame cost.
"""
import argparse
import json
import sys
import time

import torch

import extmem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the Vulkan consumer's extmem socket")
    parser.add_argument("--bytes", type=int, default=1920 * 1080 * 4, help="bytes per frame")
    parser.add_argument("--frames", type=int, default=3, help="frames, each checked byte for byte")
    parser.add_argument("--bench", type=int, default=0, help="then time this many round trips")
    args = parser.parse_args()

    torch.cuda.init()
    producer = extmem.Producer(args.socket)
    start = time.perf_counter()
    shared = producer.share(args.bytes, device=torch.cuda.current_device())
    first_handoff_ms = (time.perf_counter() - start) * 1e3
    tensor = torch.from_dlpack(shared)
    assert tensor.is_cuda and tensor.dtype == torch.uint8 and tensor.numel() == args.bytes
    assert tensor.data_ptr() == shared.device_ptr, "zero-copy: the tensor is the exported memory"
    sync = "a timeline semaphore from the Vulkan side, waited for and signalled on torch's stream" \
        if producer.has_semaphore else "host waits (torch's stream synchronised before each hand-off)"
    print(f"[torch]    exportable CUDA memory (cuMemCreate + cuMemExportToShareableHandle), {args.bytes} bytes, "
          f"shared and imported by Vulkan in {first_handoff_ms:.2f} ms; synchronisation: {sync}", flush=True)

    stream = torch.cuda.current_stream().cuda_stream
    n = args.bytes
    for frame in range(args.frames):
        tensor.copy_(torch.frombuffer(bytearray(extmem._testing.pattern(n, frame)), dtype=torch.uint8).cuda())
        producer.ready(frame, stream=stream)
        producer.wait_done(frame, stream=stream)
        expected = torch.frombuffer(bytearray(extmem._testing.pattern(n, extmem._testing.writeback_seed(frame))), dtype=torch.uint8)
        wrong = (tensor != expected.cuda()).nonzero()
        if wrong.numel():
            at = wrong[0].item()
            print(f"[torch] FAIL frame {frame}: the Vulkan write-back differs at byte {at}", flush=True)
            return 1
        print(f"[torch]    frame {frame}: written by torch, checked by Vulkan; its write-back checked here, "
              f"all {n} bytes", flush=True)

    if args.bench:
        probe = tensor[:4]
        torch.cuda.synchronize()
        start = time.perf_counter()
        for frame in range(args.frames, args.frames + args.bench):
            probe.fill_(frame & 0xFF)
            producer.ready(frame, stream=stream)
            producer.wait_done(frame, stream=stream)
        torch.cuda.synchronize()
        per_frame_us = (time.perf_counter() - start) / args.bench * 1e6
        print(json.dumps({"direction": "torch->vulkan", "bytes": n, "first_handoff_ms": first_handoff_ms,
                          "round_trip_us": per_frame_us, "frames": args.bench,
                          "sync": "semaphore" if producer.has_semaphore else "host"}), flush=True)
    producer.bye()
    return 0


if __name__ == "__main__":
    sys.exit(main())
