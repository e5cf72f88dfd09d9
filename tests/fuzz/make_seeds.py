#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/ from the fixtures of
tests/data (run from the repository root after `make`; needs build/qrm-convert).

Seeds are kept small: the converter and loader seeds are fixture
checkpoints shrunk to one layer of width 8 (the real tensor names, dtypes
and head layouts, a fraction of the bytes), plus one real fixture converted
to int4 for the loader."""
import glob, json, os, random, struct, subprocess, tempfile

ROOT = "tests/fuzz/corpus"
SEP = b"\n--safetensors--\n"
rng = random.Random(1)


def put(target, name, data):
    os.makedirs(f"{ROOT}/{target}", exist_ok=True)
    with open(f"{ROOT}/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---- json: configs, tokenizer configs, request lines, edge cases
put("json", "config", read("tests/data/models/llama3-helpsteer2-tiny/config.json"))
put("json", "tokenizer_config", read("tests/data/models/qwen2-prm-tiny/tokenizer_config.json"))
put("json", "jsonl_line", read("tests/data/tokenizers/llama3/chat.jsonl").split(b"\n")[0])
put("json", "escapes", '{"a":"\\ud83d\\ude00\\u00e9\\n\\t\\"\\\\\\/","b":[1,-0,2.5e-3,1E400,-12345678901234567890],"c":null,"d":[true,false,{}],"a":"dup"}')
put("json", "bom_nested", b"\xef\xbb\xbf" + b"[" * 40 + b"0" + b"]" * 40)

# ---- tokenizer: first byte = tokenizer (bit 0), add_special (bit 1), skip_special (bit 2)
for i, t in enumerate(["llama3", "mistral"]):
    lines = [l for l in read(f"tests/data/tokenizers/{t}/cases.jsonl").decode().split("\n") if l]
    texts = [json.loads(l)["text"] for l in lines]
    texts = [x for x in texts if 0 < len(x.encode()) < 300]
    for j, x in enumerate(rng.sample(texts, 8)):
        put("tokenizer", f"{t}_{j}", bytes([i | (j & 6)]) + x.encode())
put("tokenizer", "special", b"\x02<|begin_of_text|>hi<|eot_id|> <s>[INST] x [/INST]\xc3\xa9")

# ---- chat_template: every real template of the fixtures
seen = set()
for p in sorted(glob.glob("tests/data/models/*/tokenizer_config.json") +
                glob.glob("tests/data/models/*/*/tokenizer_config.json") +
                glob.glob("tests/data/tokenizers/*/tokenizer_config.json")):
    ct = json.loads(read(p)).get("chat_template")
    if isinstance(ct, list):
        ct = next((x["template"] for x in ct if x.get("name") == "default"), None)
    if ct and ct not in seen:
        seen.add(ct)
        put("chat_template", p.split("/")[-2], ct)

# ---- convert: one quant byte, config.json, SEP, model.safetensors (shrunk)
DIMS = {64: 8, 32: 4, 192: 16, 160: 16}
DT = {"F32": (4, "<f"), "F16": (2, "<e"), "BF16": (2, None)}


def shrink(fixture, dtypes):
    cfg = json.loads(read(f"tests/data/models/{fixture}/config.json"))
    cfg.update(hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2,
               num_key_value_heads=1)
    if "max_window_layers" in cfg:
        cfg["max_window_layers"] = 1
    blob = read(f"tests/data/models/{fixture}/model.safetensors")
    n = struct.unpack("<Q", blob[:8])[0]
    hdr = json.loads(blob[8:8 + n])
    out, data = {}, b""
    for k in sorted(hdr):
        if k == "__metadata__" or (".layers." in k and ".layers.0." not in k):
            continue
        shape = [DIMS.get(d, d) for d in hdr[k]["shape"]]
        dt = dtypes(k)
        count = 1
        for d in shape:
            count *= d
        vals = [rng.uniform(-0.5, 0.5) if not k.endswith("norm.weight") else 1.0 for _ in range(count)]
        if dt == "BF16":
            raw = b"".join(struct.pack("<f", v)[2:] for v in vals)
        else:
            raw = struct.pack(f"<{count}{DT[dt][1][1]}", *vals)
        out[k] = {"dtype": dt, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(out, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return json.dumps(cfg, indent=1).encode(), struct.pack("<Q", len(h)) + h + data


minis = {
    "prm": shrink("qwen2-prm-tiny", lambda k: "F32"),
    "multi": shrink("llama3-helpsteer2-tiny", lambda k: "F16" if "embed" in k else "BF16" if "mlp" in k else "F32"),
}
for q, (name, (cfg, st)) in enumerate(minis.items()):
    put("convert", name, bytes([q * 3]) + cfg + SEP + st)

# ---- model: the shrunk checkpoints converted, and one real fixture at int4
with tempfile.TemporaryDirectory() as tmp:
    for name, (cfg, st) in minis.items():
        d = f"{tmp}/{name}"
        os.makedirs(d)
        fx = "qwen2-prm-tiny" if name == "prm" else "llama3-helpsteer2-tiny"
        for f in ["tokenizer.json", "tokenizer_config.json"]:
            with open(f"{d}/{f}", "wb") as o:
                o.write(read(f"tests/data/models/{fx}/{f}"))
        with open(f"{d}/config.json", "wb") as o:
            o.write(cfg)
        with open(f"{d}/model.safetensors", "wb") as o:
            o.write(st)
        for q in ["f32", "int4"] if name == "prm" else ["int8"]:
            subprocess.run(["build/qrm-convert", d, "-o", f"{tmp}/{name}-{q}.qrm", "--quant", q, "-q"], check=True)
            put("model", f"{name}-{q}.qrm", read(f"{tmp}/{name}-{q}.qrm"))
    subprocess.run(["build/qrm-convert", "tests/data/models/qwen2-prm-tiny", "-o", f"{tmp}/real.qrm",
                    "--quant", "int4", "-q"], check=True)
    put("model", "qwen2-prm-tiny-int4.qrm", read(f"{tmp}/real.qrm"))

# ---- score_line: first byte = model (bits 0-1), keep mode (2-3), aggregate (4-5), rank-by (6)
lines = [
    (0, {"ids": [316, 5, 6, 7]}),
    (1, {"id": 3, "prompt": "What is 2+2?", "responses": ["4", "five", "22"]}),
    (1 | 4, {"prompt": "Hi", "responses": ["Hello!", "Go away."]}),
    (0 | 8, {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}),
    (2, {"prompt": "1+1?", "steps": ["1+1 is 2.", "So the answer is 2."]}),
    (2 | 16, {"prompt": "x", "responses": [["a", "b"], ["c"]], "extra": {"k": [1, None]}}),
    (1 | 12 | 64, {"messages": [[{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]]}),
]
for i, (sel, obj) in enumerate(lines):
    put("score_line", f"line{i}", bytes([sel]) + json.dumps(obj).encode())
