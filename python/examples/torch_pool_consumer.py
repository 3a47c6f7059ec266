"""A PyTorch consumer of an extmem pool (`extmem bench --pool --torch` starts it).

Each block arrives once and is mapped into CUDA once; every hand-off after that is a tensor at
an offset into a block, made without a driver call. The tensor is checked to lie on the GPU
with the hand-off's size, then the sub-allocation is given back.
"""

import argparse
import sys

import extmem
import torch


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    args = parser.parse_args()
    consumer = extmem.PoolConsumer(args.socket)
    count = 0
    while True:
        try:
            handle, buffer = consumer.receive()
        except extmem.EndOfStream:
            break
        tensor = torch.from_dlpack(buffer)
        block, offset, size, generation = handle
        if not tensor.is_cuda or tensor.numel() > size or tensor.data_ptr() != buffer.device_ptr:
            print(f"FAIL: hand-off {handle}: tensor {tensor.shape} on {tensor.device}", file=sys.stderr)
            return 1
        del tensor
        consumer.release(handle)
        count += 1
    # stderr: the bench may be printing JSON on stdout.
    print(f"torch pool consumer: {count} pooled hand-offs, each a tensor at its offset", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
