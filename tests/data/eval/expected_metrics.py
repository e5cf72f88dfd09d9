#!/usr/bin/env python3
"""Expected values of tests/test_eval.c's metric cases, computed apart from qrm
(python3 standard library only; written from the benchmarks' definitions:
allenai/reward-bench rewardbench/constants.py + utils.py, QwenLM/ProcessBench
code/run_eval.py). Run: python3 tests/data/eval/expected_metrics.py"""
import math

# RewardBench v1 sections (EXAMPLE_COUNTS weights)
acc = {"alpacaeval-easy": 0.5, "mt-bench-med": 1.0, "mt-bench-hard": 0.25,
       "donotanswer": 0.75, "math-prm": 1.0, "hep-go": 0.0}
w = {"alpacaeval-easy": 100, "mt-bench-med": 40, "mt-bench-hard": 37,
     "donotanswer": 136, "math-prm": 984, "hep-go": 164}
sec = {"Chat": ["alpacaeval-easy", "mt-bench-med"], "Chat Hard": ["mt-bench-hard"],
       "Safety": ["donotanswer"], "Reasoning": ["math-prm", "hep-go"]}
s = {k: sum(acc[t] * w[t] for t in v) / sum(w[t] for t in v) for k, v in sec.items()}
print("rb1 sections", {k: repr(v) for k, v in s.items()}, "overall", repr(sum(s.values()) / 4))
# the paper's average (analysis/get_benchmark_results.py): sections weight 2,
# Prior Sets (mean of anthropic_helpful 0.5 and shp 1.0) weight 1
prior = (0.5 + 1.0) / 2
print("rb1 with prior sets", prior, repr((2 * sum(s.values()) + prior) / 9))

# best-of-n with partial credit
def bon(x):
    m = max(x)
    return 1 / x.count(m) if x[0] == m else 0
print("bon", bon([1, 0, 1, 1]), bon([0.5, 0.7, 0.1]), bon([2, 1, 1, 1]))

# RewardBench 2 Ties
rows = [("ref", 1, [3, 1, 2], 1), ("tied", 1, [5, 4, 1, 2], 2),
        ("ref", 2, [1, 2], 1), ("tied", 2, [3, 1, 0], 2)]
def stats(scores, nc):
    c, i = scores[:nc], scores[nc:]
    return (min(c) - max(i) > 0, max(c) - min(c) if len(c) > 1 else None, min(c) - max(i))
ref = {p: stats(x, n) for k, p, x, n in rows if k == "ref"}
tied = {p: stats(x, n) for k, p, x, n in rows if k == "tied"}
ra = sum(v[0] for v in ref.values()) / len(ref)
ta = sum(v[0] for v in tied.values()) / len(tied)
ps = sorted(set(ref) & set(tied))
pref = sum(tied[p][2] > tied[p][1] for p in ps) / len(ps)
hard = sum(min(ref[p][2], tied[p][2]) > tied[p][1] for p in ps) / len(ps)
marg = sum(math.tanh(min(ref[p][2], tied[p][2]) / tied[p][1] - 1) for p in ps) / len(ps)
print("ties", ra, ta, pref, hard, repr(marg),
      repr(0.3 * ta + 0.3 * ra + 0.2 * pref + 0.2 * hard + 0.01 * marg))

# ProcessBench
steps = [[0.9, 0.8], [0.9, 0.4], [0.7, 0.6, 0.2], [0.5, 0.1], [0.8, 0.3, 0.1]]
labels = [-1, -1, 2, 0, 1]
pred = [next((i for i, p in enumerate(st) if p < 0.5), -1) for st in steps]
err = [p == l for p, l in zip(pred, labels) if l != -1]
cor = [p == l for p, l in zip(pred, labels) if l == -1]
a1, a2 = sum(err) / len(err), sum(cor) / len(cor)
print("processbench", pred, repr(a1), repr(a2), repr(2 * a1 * a2 / (a1 + a2)))

# Kendall tau-b
def tau_b(x, y):
    nc = nd = tx = ty = n0 = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            n0 += 1
            dx, dy = x[i] - x[j], y[i] - y[j]
            tx += dx == 0
            ty += dy == 0
            if dx and dy:
                nc += (dx > 0) == (dy > 0)
                nd += (dx > 0) != (dy > 0)
    return (nc - nd) / math.sqrt((n0 - tx) * (n0 - ty))
print("tau_b", repr(tau_b([1, 2, 3, 4, 5], [1, 3, 2, 5, 4])), repr(tau_b([1, 2, 2, 3], [1, 2, 3, 3])))

# Pearson
x, y = [1, 2, 3, 4], [2, 4, 5, 9]
mx, my = sum(x) / 4, sum(y) / 4
print("pearson", repr(sum((a - mx) * (b - my) for a, b in zip(x, y)) /
      math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))))

# quantiles (linear interpolation, numpy's default)
def q(v, p):
    v = sorted(v); pos = p * (len(v) - 1); lo = math.floor(pos); hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])
print("quantile", [q([3, 1, 4, 1, 5], p) for p in (0.25, 0.5, 0.9)])

# calibration: each pair in both orders, 10 equal-width bins
d = [0, math.log(3), -math.log(3), math.log(17 / 3)]
pts = []
for di in d:
    p = 1 / (1 + math.exp(-di))
    pts += [(p, 1), (1 - p, 0)]
bins = {}
for p, o in pts:
    bins.setdefault(min(int(p * 10), 9), []).append((p, o))
ece = sum(len(v) / len(pts) * abs(sum(o for _, o in v) / len(v) - sum(p for p, _ in v) / len(v))
          for v in bins.values())
print("ece", repr(ece), {b: len(v) for b, v in sorted(bins.items())})

# ensembles: z-score per model (population std), then combine
s0, s1 = [1, 2, 3], [10, 30, 20]
def z(v):
    m = sum(v) / len(v); sd = math.sqrt(sum((a - m) ** 2 for a in v) / len(v))
    return [(a - m) / sd for a in v]
z0, z1 = z(s0), z(s1)
print("combine mean", [repr((a + b) / 2) for a, b in zip(z0, z1)])
print("combine min", [repr(min(a, b)) for a, b in zip(z0, z1)])
print("combine mean-std:1", [repr((a + b) / 2 - abs(a - b) / 2) for a, b in zip(z0, z1)])

# RewardBench 2 report on hand-made scores: Factuality [3,1,2,0] -> 1,
# [1,1,0,0] -> 1/2 (a tie at the top shares the credit); Math [0,1,2,3] -> 0;
# Ties from the rows above. The score is the mean of the subsets.
fact = (bon([3, 1, 2, 0]) + bon([1, 1, 0, 0])) / 2
math_ = bon([0, 1, 2, 3])
ties = 0.3 * ta + 0.3 * ra + 0.2 * pref + 0.2 * hard + 0.01 * marg
print("rb2 report", fact, math_, repr((fact + math_ + ties) / 3))

# agreement of scores x with reference y (pairs): same decisions, tau-b, max diff / range
x = [1, 0, 0, 1, 3, 2]
y = [2, 0, 1, 0.5, 4, 1]
same = sum((x[i] > x[i + 1]) == (y[i] > y[i + 1]) for i in (0, 2, 4))
print("agreement", same, repr(tau_b(x, y)), max(abs(a - b) for a, b in zip(x, y)) / (max(y) - min(y)))
