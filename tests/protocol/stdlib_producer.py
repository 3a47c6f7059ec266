#!/usr/bin/env python3
"""A producer of host memory for `extmem peer`, written from docs/src/protocol.md alone.

Python's standard library only (it must not import extmem): it binds a SOCK_SEQPACKET socket in
extmem's socket folder, starts the consumer command given after `--` (`{socket}` in it is
replaced by the socket's path), shares a sealed memfd as a buffer (`Share`, handle type host
allocation), then runs the frame protocol for `--frames` frames: it writes the test pattern of
frame n, sends FrameReady(n), waits for FrameDone(n) and checks the consumer's write-back.

    python3 stdlib_producer.py --frames 3 -- extmem peer --socket {socket}

Exit status 0 and a last line `PASS: ...` when every frame crossed both ways.
"""

import argparse
import fcntl
import os
import socket
import struct
import subprocess
import sys

MAGIC = b"EXTM"
VERSION = 2
HEADER = struct.Struct("<4sHHI")
T_SHARE, T_FRAME_READY, T_FRAME_DONE, T_VERDICT, T_BYE = 1, 2, 3, 4, 5
HOST_ALLOCATION = 0x80
KIND_BUFFER = 2
TRANSFER_SRC_DST = 0x1 | 0x2
MAX_MESSAGE = 2048
MASK = (1 << 64) - 1


def pattern(length, seed):
    """Byte k of frame `seed`: ((x >> 29) ^ (x >> 13)) & 0xff, x = (k*A) ^ (seed*B) mod 2^64."""
    s = (seed * 0xD1B54A32D192ED03) & MASK
    out = bytearray(length)
    for k in range(length):
        x = ((k * 0x9E3779B97F4A7C15) & MASK) ^ s
        out[k] = ((x >> 29) ^ (x >> 13)) & 0xFF
    return bytes(out)


def socket_dir():
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "extmem")
    return os.path.join("/tmp", "extmem-%d" % os.getuid())


def private_dir(path):
    """The folder: created 0700 if missing; refused unless a real directory of ours, mode 0700."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    st = os.lstat(path)
    import stat

    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) != 0o700:
        raise SystemExit("refusing the socket folder %s: not a 0700 directory of this user" % path)


def message(ty, body=b""):
    return HEADER.pack(MAGIC, VERSION, ty, len(body)) + body


def share_body(allocation_size):
    """A descriptor: a buffer at offset 0 of host memory (section 3)."""
    body = struct.pack("<BIQIIBQi", KIND_BUFFER, HOST_ALLOCATION, allocation_size, 0, 1, 0, 0, 0)
    body += bytes(16) + bytes(16)  # device and driver UUIDs: not checked for host memory
    body += struct.pack("<Q", 0)  # row pitch
    body += struct.pack("<QI", allocation_size, TRANSFER_SRC_DST)  # the buffer
    return body


def recv(conn, timeout):
    conn.settimeout(timeout)
    data, ancdata, flags, _ = conn.recvmsg(MAX_MESSAGE + 1, socket.CMSG_SPACE(4 * 4))
    for level, kind, fds in ancdata:  # a message that carries descriptors here is refused: close them
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            for i in range(0, len(fds) - len(fds) % 4, 4):
                os.close(struct.unpack("<i", fds[i : i + 4])[0])
            raise SystemExit("FAIL: the consumer sent descriptors")
    if not data:
        raise SystemExit("FAIL: the consumer closed the connection")
    if len(data) < HEADER.size or len(data) > MAX_MESSAGE:
        raise SystemExit("FAIL: a message of %d bytes" % len(data))
    magic, version, ty, length = HEADER.unpack_from(data)
    if magic != MAGIC or version != VERSION or length != len(data) - HEADER.size:
        raise SystemExit("FAIL: bad header (magic %r, version %d, length %d)" % (magic, version, length))
    return ty, data[HEADER.size :]


def expect(conn, want, timeout=30.0):
    ty, body = recv(conn, timeout)
    if ty == T_VERDICT:
        ok, n = struct.unpack_from("<BH", body)
        detail = body[3 : 3 + n].decode("utf-8", "replace")
        if ok != 1:
            raise SystemExit("FAIL: the consumer refused: %r" % detail)
        if want == T_VERDICT:
            return detail
        raise SystemExit("FAIL: Verdict %r while message type %d was due" % (detail, want))
    if ty != want:
        raise SystemExit("FAIL: message type %d while %d was due" % (ty, want))
    return body


def refused(conn, consumer):
    """An unsealed memfd: the consumer must answer Verdict(ok 0) naming the seals, and fail."""
    ty, body = recv(conn, 30.0)
    ok, n = struct.unpack_from("<BH", body) if ty == T_VERDICT else (1, 0)
    detail = body[3 : 3 + n].decode("utf-8", "replace")
    if ty != T_VERDICT or ok != 0 or "seal" not in detail:
        raise SystemExit("FAIL: an unsealed memfd was not refused for its seals (type %d, %r)" % (ty, detail))
    if consumer.wait(timeout=30) == 0:
        raise SystemExit("FAIL: the consumer refused but exited with 0")
    print("PASS: the unsealed memfd was refused: %s" % detail)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--height", type=int, default=64)
    parser.add_argument("--no-seal", action="store_true", help="send an unsealed memfd: the consumer must refuse it")
    parser.add_argument("consumer", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.consumer[1:] if args.consumer[:1] == ["--"] else args.consumer
    if not command:
        parser.error("give the consumer's command after --")
    size = args.width * args.height * 4

    folder = socket_dir()
    private_dir(folder)
    path = os.path.join(folder, "stdlib-%d-0.sock" % os.getpid())
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    listener.bind(path)
    os.chmod(path, 0o600)
    listener.listen(1)
    consumer = subprocess.Popen([part.replace("{socket}", path) for part in command])
    try:
        listener.settimeout(30.0)
        conn, _ = listener.accept()
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, _ = struct.unpack("3i", creds)
        if uid != os.getuid():
            raise SystemExit("FAIL: peer %d runs as uid %d" % (pid, uid))

        # Host memory: a memfd sealed against shrinking and growing (section 3.3, rule 4).
        fd = os.memfd_create("stdlib-producer", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, size)
        if not args.no_seal:
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        import mmap

        memory = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        for n in range(args.frames):
            memory[:] = pattern(size, n)
            if n == 0:
                conn.sendmsg([message(T_SHARE, share_body(size))], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("<i", fd))])
                os.close(fd)
                if args.no_seal:
                    return refused(conn, consumer)
                expect(conn, T_VERDICT)
            conn.sendmsg([message(T_FRAME_READY, struct.pack("<Q", n))])
            (done,) = struct.unpack("<Q", expect(conn, T_FRAME_DONE))
            if done != n:
                raise SystemExit("FAIL: FrameDone(%d) while frame %d was due" % (done, n))
            back = bytes(memory)
            want = pattern(size, n ^ 0x5EED00000000)
            if back != want:
                at = next(i for i in range(size) if back[i] != want[i])
                raise SystemExit("FAIL: frame %d: write-back byte %d is %#04x, expected %#04x" % (n, at, back[at], want[at]))
        conn.sendmsg([message(T_BYE)])
        code = consumer.wait(timeout=30)
        if code != 0:
            raise SystemExit("FAIL: the consumer exited with %d" % code)
        print("PASS: %d frame(s) of %d bytes of host memory crossed both ways" % (args.frames, size))
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait()
        os.unlink(path)


if __name__ == "__main__":
    main()
