#!/usr/bin/env python3
"""The PyTorch consumer of `extmem demo --torch`: every frame the Vulkan producer shares is a
torch tensor on the same GPU memory (DLPack, no copy), checked byte for byte on the GPU and
written back.

Run it through the demo:  extmem demo --torch python/examples/torch_consumer.py
(needs torch with CUDA and the extmem module: `pip install .` from the repository root, in a
virtual environment).
"""
import argparse
import sys

import torch

import extmem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the producer's extmem socket")
    args = parser.parse_args()

    consumer = extmem.Consumer(args.socket)
    shared = consumer.receive()
    tensor = torch.from_dlpack(shared)  # an image: (height, width, 4) with its row pitch; a buffer: 1-D
    n = tensor.numel()
    assert tensor.is_cuda and tensor.dtype == torch.uint8 and list(tensor.shape) == shared.shape
    assert tensor.data_ptr() == shared.device_ptr, "zero-copy: the tensor is the imported memory"
    print(f"[torch]    tensor {tuple(tensor.shape)} strides {tensor.stride()} {tensor.dtype} on {tensor.device}, "
          f"data_ptr {tensor.data_ptr():#x} is the imported memory (no copy)", flush=True)
    # Synchronised on torch's own stream: the GPU orders this stream's work after the producer's
    # frame (a shared timeline semaphore), and the frame goes back once the work queued on it is
    # done; no host thread waits for the GPU in between.
    # The frame's GPU (not necessarily cuda:0 when a producer runs on each GPU) is the device
    # whose stream orders the work.
    torch.cuda.set_device(tensor.device)
    stream = torch.cuda.current_stream(tensor.device).cuda_stream
    while True:
        try:
            frame = consumer.wait_ready(stream=stream)
        except extmem.EndOfStream:
            return 0
        # The producer's pattern runs over the texels row by row, tightly packed.
        seen = tensor.contiguous().view(-1)
        expected = torch.frombuffer(bytearray(extmem._testing.pattern(n, frame)), dtype=torch.uint8).to(tensor.device)
        wrong = (seen != expected).nonzero()
        if wrong.numel():
            at = wrong[0].item()
            print(f"[torch] FAIL frame {frame}: byte {at} is {seen[at].item()}, expected {expected[at].item()}")
            return 1
        back = torch.frombuffer(bytearray(extmem._testing.pattern(n, extmem._testing.writeback_seed(frame))), dtype=torch.uint8)
        tensor.copy_(back.to(tensor.device).view(tensor.shape))
        consumer.done(frame, stream=stream)
        print(f"[torch]    frame {frame}: all {n} bytes match on the GPU; wrote its own pattern back", flush=True)


if __name__ == "__main__":
    sys.exit(main())
