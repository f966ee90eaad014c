#!/bin/bash
# The cost of process isolation on the demo: runs examples/synth/pipeline.json from scratch with
# --isolation process (a worker runs every stage that calls plugins) and --isolation none (in-process),
# alternating, REPEATS times each, and prints the medians of wall time and of CPU time (quac-host and
# its worker) and their ratios (target: within 3%).
# W1's comparison is in bench/w1_dig_bench.sh.
#   REPEATS=3
set -euo pipefail
cd "$(dirname "$0")/.."
REPEATS="${REPEATS:-3}"
swift build -c release >/dev/null
BIN=.build/release/quac-host
$BIN data synth --output runs/synth-data --size 32 --count 1024 --format safetensors >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
python3 - "$PWD" "$TMP" <<'PY'
import json, sys
root, tmp = sys.argv[1], sys.argv[2]
m = json.load(open(f"{root}/examples/synth/pipeline.json"))
def fix(o):
    if isinstance(o, dict): return {k: fix(v) for k, v in o.items()}
    if isinstance(o, list): return [fix(x) for x in o]
    if isinstance(o, str) and o.startswith("../../runs/"): return f"{root}/runs/" + o[len("../../runs/"):]
    return o
m = fix(m); m.pop("$schema", None); m["output"] = f"{tmp}/out"
json.dump(m, open(f"{tmp}/pipeline.json", "w"))
PY
python3 - "$PWD" "$TMP" "$REPEATS" "$BIN" <<'PY'
import os, resource, shutil, statistics, subprocess, sys, time
root, tmp, repeats, binary = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
env = dict(os.environ, QUAC_PLUGIN_PATH=f"{root}/plugins")
wall, cpu = {"process": [], "none": []}, {"process": [], "none": []}
for i in range(repeats):
    # Alternate which goes first, so neither always runs on a warmer machine.
    for mode in (["process", "none"] if i % 2 == 0 else ["none", "process"]):
        shutil.rmtree(f"{tmp}/out", ignore_errors=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.time()
        subprocess.run([binary, "run", "-q", f"{tmp}/pipeline.json", "--isolation", mode], env=env, check=True,
                       stderr=subprocess.DEVNULL)
        w = time.time() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU seconds of quac-host and its worker (both waited for): less sensitive than wall time to
        # what else the machine runs.
        c = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        wall[mode].append(w); cpu[mode].append(c)
        print(f"  {mode}: {w:.2f} s wall, {c:.2f} s CPU", flush=True)
for name, d in (("wall", wall), ("CPU", cpu)):
    p, n = statistics.median(d["process"]), statistics.median(d["none"])
    print(f"demo from scratch, {name}: median {p:.2f} s with a worker, {n:.2f} s in-process = {100 * (p / n - 1):+.1f}% (target: within 3%)")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
