#!/bin/bash
# The cost of process isolation on the demo: runs examples/synth/pipeline.json from scratch with
# --isolation process (a worker runs every stage that calls plugins) and --isolation none (in-process),
# alternating, REPEATS times each, and prints the medians and their ratio (target: within 3%).
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
declare -A times
for i in $(seq "$REPEATS"); do
    # Alternate which goes first, so neither always runs on a warmer machine.
    order="process none"; [ $((i % 2)) -eq 0 ] && order="none process"
    for mode in $order; do
        rm -rf "$TMP/out"
        start=$(date +%s.%N)
        QUAC_PLUGIN_PATH="$PWD/plugins" $BIN run -q "$TMP/pipeline.json" --isolation $mode 2>/dev/null
        end=$(date +%s.%N)
        t=$(python3 -c "print(f'{$end - $start:.2f}')")
        echo "  $mode: $t s"
        times[$mode]="${times[$mode]:-} $t"
    done
done
python3 - "${times[process]}" "${times[none]}" <<'PY'
import statistics, sys
p = statistics.median(map(float, sys.argv[1].split())); n = statistics.median(map(float, sys.argv[2].split()))
print(f"demo from scratch: median {p:.2f} s with a worker, {n:.2f} s in-process = {100 * (p / n - 1):+.1f}% (target: within 3%)")
PY
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
