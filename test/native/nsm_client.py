"""Python test client for the /dev/nsm preload shim: os.open plus fcntl.ioctl, the way a Python
enclave application reaches the NSM without a binding library.

    python3 nsm_client.py HEX...

Sends each request with a 0x3000-byte response buffer and prints "ok LEN HEX" (or "err NAME");
then a DescribeNSM with a 7-byte response buffer, and a 0x1001-byte request (EMSGSIZE).
"""
import ctypes
import errno
import fcntl
import os
import struct
import sys

NSM_IOCTL_RAW = 0xC0200A00
RESPONSE_MAX = 0x3000


def call(fd, request, response_len=RESPONSE_MAX):
    req = ctypes.create_string_buffer(request, len(request) or 1)
    resp = ctypes.create_string_buffer(max(response_len, 1))
    raw = bytearray(struct.pack("=QQQQ", ctypes.addressof(req), len(request), ctypes.addressof(resp), response_len))
    try:
        fcntl.ioctl(fd, NSM_IOCTL_RAW, raw, True)
    except OSError as e:
        return "err " + errno.errorcode.get(e.errno, str(e.errno))
    _, req_len, _, n = struct.unpack("=QQQQ", raw)
    assert req_len == len(request)
    return "ok %d %s" % (n, resp.raw[:n].hex())


def main():
    fd = os.open("/dev/nsm", os.O_RDWR | os.O_CLOEXEC)
    try:
        for h in sys.argv[1:]:
            print(call(fd, bytes.fromhex(h)))
        print(call(fd, bytes.fromhex("6b44657363726962654e534d"), 7))
        print(call(fd, bytes(0x1001)))
    finally:
        os.close(fd)


main()
