#!/usr/bin/env python3
"""Write a synthetic Llama reward model with the activation statistics of a
trained one, for measuring calibrated int4 (`qrm-convert --calib`) where the
tiny random fixtures cannot show it.

    python3 tools/make_synthetic_rm.py OUT_DIR [--hidden 512] [--layers 6] [--seed 1]

Random Gaussian weights (the tiny fixtures) give nearly white, evenly scaled
activations, so weighting a weight's error by its input's energy (AWQ, an
importance matrix) or by the inputs' covariance (GPTQ) has little to find.
Trained transformers differ in three ways that matter to quantization, and
this model has each of them, by construction rather than by training:
  - a few residual channels carry activations 10-30x the rest ("outlier
    features", Dettmers et al. 2022, LLM.int8()); here 4 embedding channels
    are large and the norms' gains spread log-normally;
  - token embeddings are strongly correlated (a low-rank part, rank 24, plus
    a small full-rank part), so a layer's inputs are too;
  - weights are heavy-tailed (Student t, 5 degrees of freedom).
The tokenizer, its config and the chat template are the llama3-tiny
fixture's (vocabulary 320), so every evaluation file in tests/data/eval runs
on it, and it writes OUT_DIR/random_pairs_ids.jsonl, 100 pairs of random id
sequences. numpy and the standard library only; not used at run time or by the
tests. Nothing here is an expected value: the f32 file converted from this
checkpoint is the reference, and `qrm eval --against` measures the rest
against it.
"""
import argparse
import json
import os
import random
import shutil
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
TOK_DIR = os.path.join(HERE, "..", "tests", "data", "models", "llama3-tiny")


def heavy(rng, shape, std):
    """Student-t (5 degrees of freedom) scaled to standard deviation std."""
    t = rng.standard_t(5, size=shape)
    return (t * std / np.sqrt(5.0 / 3.0)).astype(np.float32)


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], dtype="<f4")
        b = a.tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()

    H, L = a.hidden, a.layers
    F = 3 * H
    heads, kv, hd = H // 64, H // 128, 64
    V = 320
    rng = np.random.default_rng(a.seed)

    # Embeddings: low-rank (correlated channels) + small full-rank part, and a
    # few outlier channels with large values of one sign per token.
    rank = 24
    emb = (rng.standard_normal((V, rank)) @ rng.standard_normal((rank, H)) / np.sqrt(rank)
           + 0.3 * rng.standard_normal((V, H))).astype(np.float32)
    outliers = rng.choice(H, size=4, replace=False)
    emb[:, outliers] = (20.0 + 5.0 * rng.standard_normal((V, 4))).astype(np.float32)
    t = {"model.embed_tokens.weight": emb}

    def gain(n):
        return np.exp(0.5 * rng.standard_normal(n)).astype(np.float32)

    for i in range(L):
        p = "model.layers.%d." % i
        t[p + "input_layernorm.weight"] = gain(H)
        t[p + "post_attention_layernorm.weight"] = gain(H)
        t[p + "self_attn.q_proj.weight"] = heavy(rng, (heads * hd, H), 1.0 / np.sqrt(H))
        t[p + "self_attn.k_proj.weight"] = heavy(rng, (kv * hd, H), 1.0 / np.sqrt(H))
        t[p + "self_attn.v_proj.weight"] = heavy(rng, (kv * hd, H), 1.0 / np.sqrt(H))
        # Residual branches scaled down with depth, as trained models' are, so
        # the outlier channels stay the largest through the stack.
        t[p + "self_attn.o_proj.weight"] = heavy(rng, (H, heads * hd), 0.5 / np.sqrt(H * L))
        t[p + "mlp.gate_proj.weight"] = heavy(rng, (F, H), 1.0 / np.sqrt(H))
        t[p + "mlp.up_proj.weight"] = heavy(rng, (F, H), 1.0 / np.sqrt(H))
        t[p + "mlp.down_proj.weight"] = heavy(rng, (H, F), 0.5 / np.sqrt(F * L))
    t["model.norm.weight"] = gain(H)
    # A trained head reads content, not the outlier channels, whose values
    # barely change from token to token.
    score = heavy(rng, (1, H), 1.0 / np.sqrt(H))
    score[0, outliers] = 0.0
    t["score.weight"] = score

    os.makedirs(a.out, exist_ok=True)
    write_safetensors(os.path.join(a.out, "model.safetensors"), t)
    with open(os.path.join(TOK_DIR, "config.json")) as f:
        cfg = json.load(f)
    cfg.update(hidden_size=H, intermediate_size=F, num_hidden_layers=L,
               num_attention_heads=heads, num_key_value_heads=kv, head_dim=hd,
               max_position_embeddings=2048)
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK_DIR, name), os.path.join(a.out, name))
    # 100 pairs of random id sequences (ids 10..250 after BOS, 8 to 48 of
    # them): more decisions than the small text files hold.
    r = random.Random(12345)
    with open(os.path.join(a.out, "random_pairs_ids.jsonl"), "w") as f:
        for i in range(100):
            def seq():
                return [316] + [r.randint(10, 250) for _ in range(r.randint(8, 48))]
            f.write(json.dumps({"id": i, "chosen_ids": seq(), "rejected_ids": seq()}) + "\n")
    n = sum(v.size for v in t.values())
    print("%s: %d layers, hidden %d, %d parameters, outlier channels %s"
          % (a.out, L, H, n, sorted(outliers.tolist())))


if __name__ == "__main__":
    main()
