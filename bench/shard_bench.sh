#!/bin/bash
# The fixed cost of a shard against the cost of a sample, on the demo (examples/synth/pipeline.json:
# the trained CNN, the optimization converter, 11 attributors, 8 scorers), release build. Times a shard
# of 4, of 16 and of 48 samples and a merge of 4 and of 48 (sizes other than the smallest and the
# largest must divide the largest), fits t(n) = a + b*n (shard) and
# m(n) = m0 + c*n (merge), and prints, for N shards on N machines, the speedup over one run of n
# samples, (a + b*n) / (a + b*n/N + m0 + c*n), and the dataset size above which it is at least 0.9*N.
# Training is left out: it is one job before the shards, the same with or without them.
#   SIZES="4 16 48" (shard sizes; the first and last are also merged), ISOLATION=process
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${SIZES:-4 16 48}"
ISOLATION="${ISOLATION:-process}"
swift build -c release >/dev/null
BIN=$PWD/.build/release/quac-host
$BIN data synth --output runs/synth-data --size 32 --count 1024 --format safetensors >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
QUAC_PLUGIN_PATH="$PWD/plugins" python3 - "$PWD" "$TMP" "$BIN" "$ISOLATION" $SIZES <<'PY'
import json, os, shutil, subprocess, sys, time
root, tmp, bin_, isolation = sys.argv[1:5]
sizes = [int(s) for s in sys.argv[5:]]
small, large = min(sizes), max(sizes)
m = json.load(open(f"{root}/examples/synth/pipeline.json"))
def fix(o):
    if isinstance(o, dict): return {k: fix(v) for k, v in o.items()}
    if isinstance(o, list): return [fix(x) for x in o]
    if isinstance(o, str) and o.startswith("../../runs/"): return f"{root}/runs/" + o[len("../../runs/"):]
    return o
m = fix(m); m.pop("$schema", None)

def manifest(limit):
    d = dict(m); d["data"] = dict(m["data"], limit=limit); d["output"] = f"{tmp}/out{limit}"
    path = f"{tmp}/pipeline{limit}.json"
    json.dump(d, open(path, "w"))
    return path

def timed(args):
    start = time.perf_counter()
    subprocess.run([bin_] + args, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start

# One training, shared by every output (its fingerprint does not depend on the data's limit).
subprocess.run([bin_, "train", "-q", manifest(large)], check=True, stderr=subprocess.DEVNULL)
models = f"{tmp}/out{large}/models"
shard_times, merge_times = [], {}
for n in sorted(set(sizes)):
    # A run limited to n samples, as one shard, and its merge for the smallest and the largest; a shard
    # of n samples of the largest run otherwise.
    whole = n in (small, large)
    limit, parts = (n, 1) if whole else (large, large // n)
    path = manifest(limit)
    if not os.path.exists(f"{tmp}/out{limit}/models"):
        shutil.copytree(models, f"{tmp}/out{limit}/models")
    # --force: the folder holds only the copied models so far.
    t = timed(["run", "-q", "--force", path, "--shard", f"0/{parts}", "--isolation", isolation])
    shard_times.append((n, t))
    print(f"  shard of {n} samples (0/{parts} of {limit}): {t:.2f} s")
    if whole:
        # A merge is short and noisy: the fastest of 5.
        mt = min(timed(["merge", "-q", f"{tmp}/out{limit}", "--shards", "1"]) for _ in range(5))
        merge_times[n] = mt
        sizes_ = {}
        for kind in ("attributions", "scores", "counterfactuals"):
            folder = f"{tmp}/out{limit}/{kind}"
            sizes_[kind] = sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder)) if os.path.isdir(folder) else 0
        print(f"  merge of {n} samples: {mt:.3f} s (fastest of 5); merged files "
              + ", ".join(f"{k} {v / 1e6:.2f} MB" for k, v in sizes_.items()))
    if n == small:
        # The same shard again, every unit reused: the fixed cost alone, less the worker (not started
        # when nothing is computed) and the writing. A check on the fit's intercept.
        reused = timed(["run", "-q", path, "--shard", f"0/{parts}", "--isolation", isolation])
        print(f"  the shard of {n} samples again, all reused: {reused:.2f} s")

def fit(points):
    xs = [p[0] for p in points]; ys = [p[1] for p in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return my - b * mx, b
a, b = fit(shard_times)
m0, c = fit(sorted(merge_times.items())) if len(merge_times) == 2 else (0.0, 0.0)
if c < 0:
    # Noise larger than the per-sample cost: count the merge as fixed, at its slowest.
    m0, c = max(merge_times.values()), 0.0
print(f"shard: fixed {a:.2f} s (process start, data, plugins, weights, worker) + {1000 * b:.1f} ms per sample")
print(f"merge: fixed {m0:.3f} s + {1000 * c:.3f} ms per sample")
print("N shards on N machines against one run (training and Slurm's queueing left out):")
for N in (2, 4, 8, 16, 32, 64):
    denominator = 0.1 * b - 0.9 * N * c
    if denominator <= 0:
        print(f"  N={N:>2}: never 0.9*N: the merge's per-sample cost outgrows a shard's saving")
        continue
    n_star = ((0.9 * N - 1) * a + 0.9 * N * m0) / denominator
    def speedup(n): return (a + b * n) / (a + b * n / N + m0 + c * n)
    print(f"  N={N:>2}: speedup >= {0.9 * N:.1f} (0.9*N) above n = {n_star:.0f} samples; "
          f"at n = 1000: {speedup(1000):.2f}, at n = 10000: {speedup(10000):.2f}")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
