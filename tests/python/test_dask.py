"""Scale-out on Dask (Debian's python3-distributed): a local cluster of two
worker processes scores partitions of a JSONL file; each worker opens the
model once (mmap: the pages are shared) and the results come back identical
to `qrm score --input` and in input order. The same code runs on a real
cluster: pass the scheduler's address to Client instead of a LocalCluster."""
import json
import os
import subprocess
import tempfile
import unittest

MODELS = os.environ.get("QRM_TEST_MODELS", "build/py-test")
QRM = os.environ.get("QRM_CLI", "build/qrm")

_models = {}  # per worker process: path -> qrm.Model, opened once


def score_lines(lines, path):
    """A partition of JSONL lines ({"id", "prompt", "responses"}) -> the CLI's
    output lines for them. Runs inside a worker process."""
    import qrm
    m = _models.get(path)
    if m is None:
        m = _models[path] = qrm.Model(path, threads=1)
    out = []
    for line in lines:
        rec = json.loads(line)
        scores = m.score(rec.pop("prompt"), rec.pop("responses"))
        head = json.dumps(rec, separators=(",", ":"))[1:-1]
        body = '"scores":[' + ",".join("%.9g" % s[0] for s in scores) + "]"
        out.append("{" + (head + "," if head else "") + body + "}")
    return out


class Dask(unittest.TestCase):
    def test_local_cluster_equals_cli(self):
        try:
            import dask.bag as db
            from distributed import Client, LocalCluster
        except ImportError:
            self.skipTest("python3-distributed is not installed")
        path = os.path.abspath(os.path.join(MODELS, "qwen3-tiny.qrm"))
        prompts = ["What is %d+%d?" % (i, i) for i in range(24)]
        lines = [json.dumps({"id": i, "prompt": p, "responses": [str(2 * i), "I do not know.", "%d." % (i + 1)]})
                 for i, p in enumerate(prompts)]
        with tempfile.TemporaryDirectory() as d:
            data = os.path.join(d, "in.jsonl")
            with open(data, "w") as f:
                f.write("\n".join(lines) + "\n")
            env = dict(os.environ)
            env.pop("QRM_ISA", None)
            want = subprocess.run([QRM, "score", "-m", path, "--input", data, "-t", "1"],
                                  capture_output=True, text=True, env=env, check=True).stdout.splitlines()
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                              host="127.0.0.1") as cluster, Client(cluster) as client:
                bag = db.from_sequence(lines, npartitions=6)
                got = bag.map_partitions(score_lines, path).compute()
                workers = client.run(lambda: os.getpid())
            self.assertEqual(len(workers), 2)
            self.assertEqual(got, want)


if __name__ == "__main__":
    unittest.main()
