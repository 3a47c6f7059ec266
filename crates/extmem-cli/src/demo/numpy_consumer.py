"""The numpy consumer of `extmem demo --consumer numpy`: a CPU process that maps the producer's
host memory (a sealed memfd) and sees it as a numpy array through DLPack (no copy), checks
every byte of each frame and writes its own pattern back. Needs numpy and the extmem module
(`pip install numpy .` from the repository root, in a virtual environment)."""
import argparse
import sys

import numpy as np

import extmem


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the producer's extmem socket")
    args = parser.parse_args()
    consumer = extmem.Consumer(args.socket)
    shared = consumer.receive(device="cpu")
    array = np.from_dlpack(shared)
    n = array.size
    assert array.ctypes.data == shared.data_ptr, "zero-copy: the array is the shared pages"
    print(f"[numpy]    numpy {np.__version__}: a {array.shape} {array.dtype} array at {array.ctypes.data:#x}, "
          "the shared pages (no copy)", flush=True)
    while True:
        try:
            frame = consumer.wait_ready()
        except extmem.EndOfStream:
            return 0
        expected = np.frombuffer(extmem._testing.pattern(n, frame), dtype=np.uint8)
        wrong = np.flatnonzero(array != expected)
        if wrong.size:
            at = wrong[0]
            print(f"[numpy] FAIL frame {frame}: byte {at} is {array[at]}, expected {expected[at]}", flush=True)
            return 1
        array[:] = np.frombuffer(extmem._testing.pattern(n, extmem._testing.writeback_seed(frame)), dtype=np.uint8)
        consumer.done(frame)
        print(f"[numpy]    frame {frame}: all {n} bytes match; wrote its own pattern back", flush=True)


if __name__ == "__main__":
    sys.exit(main())
