#!/usr/bin/env bash
# Fuzz llmux (docs/fuzzing.md).
#
#   tests/fuzz/run.sh --minutes N [--jobs J] [TARGET...]
#       build the libFuzzer targets with clang (ASan+UBSan) in build-fuzz/ and
#       fuzz each TARGET (default: all) for N minutes, J targets at a time
#       (default 1). Crashes are kept going past (-fork=1 -ignore_crashes=1);
#       reproducers land in build-fuzz/fuzz/artifacts/TARGET/, new inputs in
#       build-fuzz/fuzz/corpus/TARGET/, the log in build-fuzz/fuzz/TARGET.log.
#       Prints the executions and crashes of each target.
#   tests/fuzz/run.sh --regress BUILD_DIR
#       run every file of corpus/TARGET/ and crashes/TARGET/ once through
#       BUILD_DIR/bin/TARGET (any build: with gcc they are plain programs);
#       exit status non-zero if any input fails. tools/test.sh runs this
#       under ASan+UBSan.
#   tests/fuzz/run.sh --save TARGET
#       merge the inputs of the last run that add coverage (at most 4 KiB
#       each) into corpus/TARGET/, to be committed.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
targets_all=(fuzz_config fuzz_request fuzz_response fuzz_stream fuzz_chat fuzz_azure_stream fuzz_eventstream fuzz_gemini_stream fuzz_anthropic_stream)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

regress() {
    local bin=$1/bin failed=0 t dirs
    for t in "${targets_all[@]}"; do
        [ -x "$bin/$t" ] || { echo "$bin/$t: not built"; failed=1; continue; }
        dirs=("$here/corpus/$t")
        [ -d "$here/crashes/$t" ] && dirs+=("$here/crashes/$t")
        "$bin/$t" "${dirs[@]}" || { echo "FAILED: $t"; failed=1; }
    done
    return $failed
}

build() {
    command -v clang >/dev/null || {
        echo "fuzzing needs clang and libFuzzer: apt-get install clang libclang-rt-dev" >&2
        exit 1
    }
    CC=clang cmake -S "$root" -B "$root/build-fuzz" -DLLMUX_FUZZ=ON -DLLMUX_SANITIZE=ON \
        -DLLMUX_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null &&
        cmake --build "$root/build-fuzz" -j"$(nproc)" --target "${targets_all[@]}" >/dev/null
}

fuzz_one() { # TARGET SECONDS
    local t=$1 secs=$2 work=$root/build-fuzz/fuzz
    mkdir -p "$work/corpus/$t" "$work/artifacts/$t"
    "$root/build-fuzz/bin/$t" -max_total_time="$secs" -fork=1 -ignore_crashes=1 \
        -ignore_timeouts=1 -ignore_ooms=1 -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$work/artifacts/$t/" -dict="$here/llmux.dict" \
        "$work/corpus/$t" "$here/corpus/$t" >"$work/$t.log" 2>&1
    local execs crashes
    execs=$(grep -Eo '^#[0-9]+' "$work/$t.log" | tail -1 | tr -d '#')
    crashes=$(find "$work/artifacts/$t" -type f | wc -l)
    echo "$t: ${execs:-0} executions in $secs s, $crashes reproducers in $work/artifacts/$t/"
}

save() {
    local t=$1 work=$root/build-fuzz/fuzz
    "$root/build-fuzz/bin/$t" -merge=1 -max_len=4096 "$here/corpus/$t" "$work/corpus/$t" \
        >"$work/$t.merge.log" 2>&1 && tail -1 "$work/$t.merge.log"
}

[ $# -ge 1 ] || usage
case $1 in
--regress)
    [ $# -eq 2 ] || usage
    regress "$2"
    ;;
--save)
    [ $# -eq 2 ] || usage
    save "$2"
    ;;
--minutes)
    [ $# -ge 2 ] || usage
    minutes=$2 jobs=1
    shift 2
    if [ "${1:-}" = --jobs ]; then jobs=$2; shift 2; fi
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${targets_all[@]}")
    build || exit 1
    secs=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')
    running=0
    for t in "${targets[@]}"; do
        fuzz_one "$t" "$secs" &
        running=$((running + 1))
        if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
    done
    wait
    ;;
*) usage ;;
esac
