#!/usr/bin/env bash
# Runs one libFuzzer target: fuzz/run.sh <target> [runs] [extra libFuzzer flags...]
#   target: safetensors npy json manifest png tiff torch onnx
# Builds nothing (make fuzz-build does). The working corpus starts from the committed seeds in
# fuzz/corpus/<target> and grows in fuzz/work/<target>/corpus (git-ignored); crashes, leaks, timeouts
# and out-of-memory inputs go to fuzz/work/<target>/artifacts; the log is fuzz/work/<target>/log.
# Prints one summary line: target, executions, seconds, final cov/ft/corpus, result. To stop a slow
# target early, pass -max_total_time=SECONDS (or send the fuzzer SIGINT).
set -u
here=$(cd "$(dirname "$0")" && pwd)
target=$1; runs=${2:-1000000}; shift; [ $# -gt 0 ] && shift
# The release build of make fuzz-build if there is one, else the debug build; FUZZ_BIN_DIR overrides.
default_dir=$here/../.build-fuzz-release/release
[ -x "$default_dir/fuzz-$target" ] || default_dir=$here/../.build-fuzz/debug
bin=${FUZZ_BIN_DIR:-$default_dir}/fuzz-$target
case $target in
    safetensors|npy) max_len=4096 ;;
    json|manifest|png|tiff) max_len=8192 ;;
    torch) max_len=32768 ;;   # the zip seeds (cnn.pt is 21,885 bytes) must fit
    onnx) max_len=24576 ;;    # the seeds (resnet_opset11.onnx is 22,317 bytes) must fit
    *) echo "unknown target $target" >&2; exit 2 ;;
esac
[ -x "$bin" ] || { echo "$bin missing: run make fuzz-build" >&2; exit 2; }
work=$here/work/$target
mkdir -p "$work/corpus" "$work/artifacts"
cp -n "$here/corpus/$target"/* "$work/corpus/" 2>/dev/null
dict=()
[ -f "$here/dict/$target.dict" ] && dict=(-dict="$here/dict/$target.dict")
start=$(date +%s)
# The Swift runtime backtracer would hold the crashing process (and libFuzzer's report) for its own.
SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=$here/lsan.supp:${LSAN_OPTIONS:-} \
nice -n 19 "$bin" -runs="$runs" -rss_limit_mb=2048 -malloc_limit_mb=2048 -timeout=10 -max_len=$max_len \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 "${dict[@]}" "$@" "$work/corpus" >"$work/log" 2>&1
rc=$?
secs=$(( $(date +%s) - start ))
execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/log" | grep -o '[0-9]*$' | tail -1)
final=$(grep -E '^#[0-9]+' "$work/log" | tail -1 | grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+/[0-9]+[a-zA-Z]*')
if [ $rc -eq 0 ]; then result="no findings"
elif grep -q "libFuzzer: run interrupted" "$work/log"; then result="interrupted, no findings before"
else
    result="FINDING (exit $rc): $(grep -m1 -E 'ERROR:|deadly signal|Fatal error|timeout|out-of-memory' "$work/log" | cut -c1-160); artifacts in $work/artifacts"
fi
printf '%-12s executions %-9s time %5ss  %s  %s\n' "$target" "${execs:-?}" "$secs" "${final:-?}" "$result"
exit $rc
