#!/usr/bin/env python3
"""Guest instructions executed inside named functions, from a qemu-user log.

    qemu-aarch64 -d in_asm,exec,nochain -D LOG ./prog ...
    bench/ab/qemu_count.py LOG ./prog FUNC...

in_asm gives each translated block's instructions, exec (with nochain, so
every block entry is logged) each time a block runs; a block counts towards
the function whose address range (nm -S of the static binary) holds its
first instruction.
"""
import collections
import re
import subprocess
import sys


def main(log, prog, funcs):
    nm = subprocess.run(["aarch64-linux-gnu-nm", "-S", prog], check=True, capture_output=True, text=True).stdout
    ranges = {}
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] in funcs:
            ranges[f[3]] = (int(f[0], 16), int(f[0], 16) + int(f[1], 16))
    missing = [f for f in funcs if f not in ranges]
    if missing:
        sys.exit(f"qemu_count: {prog} has no symbol {missing[0]}")
    size, runs, start = {}, collections.Counter(), None
    with open(log, errors="replace") as fh:
        for line in fh:
            if line.startswith("IN:") or not line.strip():
                start = None
                continue
            m = re.match(r"0x([0-9a-f]+):\s", line)
            if m:
                if start is None:
                    start, size[int(m.group(1), 16)] = int(m.group(1), 16), 0
                size[start] += 1
                continue
            m = re.search(r"Trace .*?\[[0-9a-f]+/([0-9a-f]+)/", line)
            if m:
                runs[int(m.group(1), 16)] += 1
    for f in funcs:
        lo, hi = ranges[f]
        print(f, sum(n * size.get(a, 0) for a, n in runs.items() if lo <= a < hi))


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
