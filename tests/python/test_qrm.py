"""The Python binding (tools/python/qrm) against the C library and the CLI.

Run by `make test-python`, which converts the fixtures into QRM_TEST_MODELS
and points QRM_LIBRARY at build/libqrm.so. Standard library only."""
import json
import os
import subprocess
import threading
import unittest

import qrm

# The library reads no environment: like the CLI and the C suites, the test
# passes QRM_ISA on (make test sets it per kernel family).
ISA = os.environ.get("QRM_ISA") or None
qrm.set_default_isa(ISA)

MODELS = os.environ.get("QRM_TEST_MODELS", "build/py-test")
QRM = os.environ.get("QRM_CLI", "build/qrm")
DATA = "tests/data/models"


def model(name):
    return os.path.join(MODELS, name + ".qrm")


def cli(args, stdin=None):
    env = dict(os.environ)
    env.pop("QRM_ISA", None)
    r = subprocess.run([QRM, "score"] + args, input=stdin, capture_output=True, text=True, env=env)
    if r.returncode:
        raise AssertionError(r.stderr)
    return r.stdout


def expected(name):
    with open(os.path.join(DATA, name, "expected.jsonl")) as f:
        return [json.loads(line) for line in f]


def same_float(a, b):
    """Bit for bit, as the CLI prints floats (%.9g round-trips a float32)."""
    return "%.9g" % a == "%.9g" % b


class Binding(unittest.TestCase):
    def test_version(self):
        self.assertRegex(qrm.version(), r"^\d+\.\d+\.\d+$")

    def test_score_ids_equals_cli(self):
        m = qrm.Model(model("qwen3-tiny"))
        for line in expected("qwen3-tiny")[:6]:
            got = m.score_ids(line["ids"])
            want = cli(["-m", model("qwen3-tiny"), "--ids", " ".join(map(str, line["ids"]))]).split()
            self.assertEqual(len(got), 1)
            self.assertEqual("%.9g" % got[0], want[0])
            self.assertLess(abs(got[0] - line["score"]), 1e-4 * max(1, abs(line["score"])))

    def test_kv_q8_equals_cli(self):
        m = qrm.Model(model("qwen3-tiny"), kv="q8")
        ids = expected("qwen3-tiny")[0]["ids"]
        want = cli(["-m", model("qwen3-tiny"), "--kv", "q8", "--ids", " ".join(map(str, ids))]).split()
        self.assertEqual("%.9g" % m.score_ids(ids)[0], want[0])
        self.assertNotEqual(want[0], cli(["-m", model("qwen3-tiny"), "--ids", " ".join(map(str, ids))]).split()[0])
        with self.assertRaisesRegex(ValueError, "kv: 'int8' is not f32, f16 or q8"):
            qrm.Model(model("qwen3-tiny"), kv="int8")
        with self.assertRaisesRegex(qrm.Error, "multiple of 32; this model's is 16"):
            qrm.Model(model("llama3-helpsteer2-tiny"), kv="q8").score_ids([1, 2])

    def test_load_copy_scores_as_mapped(self):
        ids = expected("qwen3-tiny")[0]["ids"]
        mapped = qrm.Model(model("qwen3-tiny")).score_ids(ids)
        copied = qrm.Model(model("qwen3-tiny"), load="copy").score_ids(ids)
        self.assertEqual(["%.9g" % x for x in copied], ["%.9g" % x for x in mapped])
        with self.assertRaisesRegex(ValueError, "load: 'huge' is not map or copy"):
            qrm.Model(model("qwen3-tiny"), load="huge")

    def test_best_of_n_equals_cli_and_alone(self):
        m = qrm.Model(model("qwen3-tiny"))
        prompt, responses = "What is 2+2?", ["4", "five", "It is 4."]
        got = m.score(prompt, responses)
        line = json.loads(cli(["-m", model("qwen3-tiny"), "--input", "-"],
                              json.dumps({"prompt": prompt, "responses": responses})))
        for g, w, r in zip(got, line["scores"], responses):
            self.assertEqual("%.9g" % g[0], "%.9g" % w)
            self.assertTrue(same_float(g[0], m.score_ids(m.encode(prompt, r))[0]))

    def test_messages_and_named_outputs(self):
        m = qrm.Model(model("llama3-helpsteer2-tiny"))
        self.assertEqual(m.outputs, ["helpfulness", "correctness", "coherence", "complexity", "verbosity"])
        msgs = [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}]
        got = m.score_messages(msgs)
        line = json.loads(cli(["-m", model("llama3-helpsteer2-tiny"), "--input", "-"],
                              json.dumps({"messages": msgs})))
        for name, value in zip(m.outputs, got):
            self.assertEqual("%.9g" % value, "%.9g" % line["scores"][0][name])

    def test_prm_steps_match_reference(self):
        m = qrm.Model(model("qwen2-prm-tiny"))
        self.assertTrue(m.per_step)
        for line in expected("qwen2-prm-tiny"):
            if "steps" not in line:
                continue
            got = m.score_steps(line["prompt"], line["steps"])
            self.assertEqual(len(got), len(line["step_scores"]))
            for g, w in zip(got, line["step_scores"]):
                self.assertLess(abs(g - w), 1e-5)
        best = m.score("What is 1+1?", [["One plus one.", "It is 2."], ["It is 3."]])
        self.assertEqual(best[1], m.score_steps("What is 1+1?", ["It is 3."]))

    def test_errors_carry_qrms_message(self):
        with self.assertRaises(qrm.Error) as e:
            qrm.Model(os.path.join(MODELS, "missing.qrm"))
        self.assertIn("missing.qrm", str(e.exception))
        m = qrm.Model(model("qwen3-tiny"))
        with self.assertRaises(qrm.Error) as e:
            m.score_ids([316, 100000])
        self.assertIn("out of range", str(e.exception))
        with self.assertRaises(qrm.Error):
            m.score_ids([])
        p = qrm.Model(model("qwen2-prm-tiny"))
        with self.assertRaises(qrm.Error) as e:
            p.score_steps("q", ["a", ""])
        self.assertEqual(str(e.exception), "step 1 is empty")

    def test_threads_each_get_a_context(self):
        m = qrm.Model(model("qwen3-tiny"), threads=1)
        lines = expected("qwen3-tiny")
        alone = [m.score_ids(l["ids"])[0] for l in lines]
        results, errors = {}, []

        def work(k):
            try:
                results[k] = [m.score_ids(l["ids"])[0] for l in lines]
            except Exception as e:  # pragma: no cover - reported below
                errors.append(e)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for k in range(4):
            self.assertEqual(["%.9g" % x for x in results[k]], ["%.9g" % x for x in alone])
        self.assertEqual(len(m._ctxs), 5)  # the main thread's and one per worker
        m.close()
        with self.assertRaises(qrm.Error):
            threading.Thread(target=lambda: m.score_ids([316])).run()

    def test_tokenize_on_the_model_equals_cli(self):
        m = qrm.Model(model("qwen3-tiny"))
        for text, special in (("What is 2+2?", False), ("Héllo, wörld", True)):
            args = [QRM, "tokenize", "-m", model("qwen3-tiny"), "--text", text] + (["--special"] if special else [])
            env = dict(os.environ)
            env.pop("QRM_ISA", None)
            want = subprocess.run(args, capture_output=True, text=True, env=env, check=True).stdout.split()
            self.assertEqual(m.tokenize(text, add_special=special), [int(x) for x in want])

    def test_messages_as_structs(self):
        m = qrm.Model(model("llama3-helpsteer2-tiny"))
        msgs = [{"role": "user", "content": "Name a prime."}, {"role": "assistant", "content": "7"}]
        self.assertEqual(m.encode_messages(msgs), m.encode("Name a prime.", "7"))
        # other members go to the template as JSON; these two it ignores
        extra = [dict(msg, name="x") for msg in msgs]
        self.assertEqual(m.encode_messages(extra), m.encode_messages(msgs))
        with self.assertRaises(qrm.Error) as e:
            m.encode_messages([{"role": "user", "content": 7}])
        self.assertEqual(e.exception.status, qrm.EINVAL)

    def test_abort_event(self):
        stop = threading.Event()
        m = qrm.Model(model("qwen3-tiny"), abort=stop)
        ids = expected("qwen3-tiny")[2]["ids"]
        want = m.score_ids(ids)
        stop.set()
        with self.assertRaises(qrm.Aborted) as e:
            m.score_ids(ids)
        self.assertEqual(e.exception.status, qrm.EABORTED)
        self.assertIn("abort", str(e.exception))
        with self.assertRaises(qrm.Aborted):
            m.score("What is 2+2?", ["4", "5"])
        stop.clear()
        self.assertEqual(m.score_ids(ids), want)

    def test_set_default_isa(self):
        m = qrm.Model(model("qwen3-tiny"))
        ids = expected("qwen3-tiny")[1]["ids"]
        want = m.score_ids(ids)
        with self.assertRaises(qrm.Error) as e:
            qrm.set_default_isa("no-such-isa")
        self.assertEqual(e.exception.status, qrm.EINVAL)
        self.assertIn("no-such-isa", str(e.exception))
        try:
            qrm.set_default_isa("scalar")
            # a new thread: a new context, on the scalar family; every family
            # gives the same bits
            got = []
            t = threading.Thread(target=lambda: got.append(m.score_ids(ids)))
            t.start()
            t.join()
            self.assertEqual(got, [want])
        finally:
            qrm.set_default_isa(ISA)

    def test_numpy_arrays(self):
        try:
            import numpy as np
        except ImportError:
            self.skipTest("numpy is not installed")
        m = qrm.Model(model("qwen3-tiny"))
        ids = expected("qwen3-tiny")[3]["ids"]
        self.assertEqual(m.score_ids(np.array(ids, dtype=np.int64)), m.score_ids(ids))


if __name__ == "__main__":
    unittest.main()
