#!/usr/bin/env python3
"""Innermost loops of each function in an aarch64 object, from objdump -d.

    aarch64-linux-gnu-objdump -d --no-show-raw-insn X.o | bench/loopcount.py [-v] [FUNC...]

A loop is a branch to a lower address inside the same function (the back
edge) together with its target (the head). A loop is innermost when no other
back edge lies strictly inside it. For each innermost loop it prints the
instructions on the path from the head to the back edge, following
unconditional branches and taking the fall-through of every conditional
branch inside the loop (the path the compiler laid out as the common one;
a conditional forward branch leaving the range is listed so it can be
checked by hand), and the mix of that path: fmla/fmls, other vector float
arithmetic, loads, stores, fcvt*, and the rest (address, loop control).
-v prints the path itself.
"""
import re
import sys
from collections import Counter

FUNC_RE = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
INSN_RE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
BRANCH_RE = re.compile(r"^(b|b\.\w+|cbz|cbnz|tbz|tbnz)$")
TARGET_RE = re.compile(r"\b([0-9a-f]+) <")


def parse(lines):
    funcs, cur = {}, None
    for line in lines:
        m = FUNC_RE.match(line.strip())
        if m:
            cur = m.group(2)
            funcs[cur] = []
            continue
        m = INSN_RE.match(line)
        if m and cur is not None and not m.group(2).startswith("."):
            ops = m.group(3).split("//")[0].strip()
            funcs[cur].append((int(m.group(1), 16), m.group(2), ops))
    return funcs


def target(mn, ops):
    if not BRANCH_RE.match(mn):
        return None
    m = TARGET_RE.search(ops)
    return int(m.group(1), 16) if m else None


def kind(mn, ops):
    vec = ".4s" in ops or ".2s" in ops or ".2d" in ops or ".8h" in ops or ".4h" in ops \
        or ".16b" in ops
    if mn in ("fmla", "fmls") and vec:
        return "fma"
    if mn.startswith("fcvt") and vec:
        return "fcvt"
    if mn[0] == "f" and vec:
        return "vfp"
    if mn.startswith("ld"):
        return "load"
    if mn.startswith("st"):
        return "store"
    if vec:
        return "vother"
    return "other"


def innermost(insns):
    idx = {a: i for i, (a, _, _) in enumerate(insns)}
    edges = []
    for i, (a, mn, ops) in enumerate(insns):
        t = target(mn, ops)
        if t is not None and t <= a and t in idx:
            edges.append((idx[t], i))
    return [(h, e) for (h, e) in edges
            if not any((h2, e2) != (h, e) and h <= h2 and e2 <= e for (h2, e2) in edges)]


def path(insns, h, e):
    idx = {a: i for i, (a, _, _) in enumerate(insns)}
    out, exits, i, seen = [], [], h, set()
    while i not in seen:
        seen.add(i)
        a, mn, ops = insns[i]
        out.append(insns[i])
        if i == e:
            break
        t = target(mn, ops)
        if mn == "b" and t in idx:
            i = idx[t]
            continue
        if t is not None and not (insns[h][0] <= t <= insns[e][0]):
            exits.append((a, mn, ops))
        i += 1
    return out, exits


def main(argv):
    verbose = "-v" in argv
    want = [a for a in argv if a != "-v"]
    funcs = parse(sys.stdin)
    for name, insns in funcs.items():
        if want and name not in want:
            continue
        for h, e in innermost(insns):
            p, exits = path(insns, h, e)
            mix = Counter(kind(mn, ops) for _, mn, ops in p)
            print(f"{name} loop {insns[h][0]:#x}-{insns[e][0]:#x}: {len(p)} instructions "
                  f"(fma {mix['fma']}, vfp {mix['vfp']}, fcvt {mix['fcvt']}, load {mix['load']}, "
                  f"store {mix['store']}, vother {mix['vother']}, other {mix['other']})"
                  + (f", exits at {', '.join(hex(a) for a, _, _ in exits)}" if exits else ""))
            if verbose:
                for a, mn, ops in p:
                    print(f"    {a:6x}  {mn:8s} {ops}")


if __name__ == "__main__":
    main(sys.argv[1:])
