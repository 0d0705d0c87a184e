#!/usr/bin/env bash
# bench/run.sh - build and run every llmux benchmark on loopback against
# llmux-sim, then write the report. See bench/README.md.
#
#   bench/run.sh --quick            smoke run, ~1-2 minutes, no network
#   bench/run.sh --full             the report: docs/benchmarks.md (<15 minutes)
#
# Options:
#   --out FILE        results JSON (default: <build-dir>/results.json)
#   --md FILE         markdown report (default: docs/benchmarks.md for --full,
#                     <build-dir>/benchmarks-quick.md for --quick)
#   --build-dir DIR   where to build and keep results (default: build-bench/ in
#                     this checkout, so two checkouts never share a CMake cache)
#   --venv DIR        venv with openai + litellm (default: ~/.cache/llmux-bench-venv;
#                     --full creates it when missing, --quick only uses it)
#   --no-venv         never create or use the venv (openai/LiteLLM rows not run)
#   --only LIST       comma list of parts: seq,tput,mem,micro,journal,py,go (default: all)
#   --no-build        reuse the build in --build-dir
#
# Each part runs when its piece exists (library, simulator, Python binding,
# Go binding, venv); otherwise the report says "not run: <reason>". A failed
# configure or build (library, simulator, benchmark, Go binding) still lets the
# rest run and be reported, but the exit status is then 1.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=quick
OUT=""
MD=""
BUILD=${LLMUX_BENCH_DIR:-$ROOT/build-bench}
VENV=${LLMUX_BENCH_VENV:-$HOME/.cache/llmux-bench-venv}
USE_VENV=1
ONLY="seq,tput,mem,micro,journal,py,go"
DO_BUILD=1

while [ $# -gt 0 ]; do
    case "$1" in
    --quick) MODE=quick ;;
    --full) MODE=full ;;
    --out) OUT=$2; shift ;;
    --md) MD=$2; shift ;;
    --build-dir) BUILD=$2; shift ;;
    --venv) VENV=$2; shift ;;
    --no-venv) USE_VENV=0 ;;
    --only) ONLY=$2; shift ;;
    --no-build) DO_BUILD=0 ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done

mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
OUT=${OUT:-$BUILD/results.json}
if [ -z "$MD" ]; then
    if [ "$MODE" = full ]; then MD=$ROOT/docs/benchmarks.md; else MD=$BUILD/benchmarks-quick.md; fi
fi
RESULTS=$BUILD/results.jsonl
LOGS=$BUILD/logs
BIN=$BUILD/build/bin
mkdir -p "$LOGS"
: >"$RESULTS"
T_START=$(date +%s)

if [ "$MODE" = full ]; then
    SEQ_ARGS="--reps 21 --block 3000"
    TPUT_ARGS="--reps 7 --secs 1.0"
    MEM_CHECKPOINTS="10000,100000,1000000"
    INFL_ARGS="--n 64 --latency-ms 300"
    MICRO_ARGS="--reps 9 --min-ms 200"
    PY_SEQ_ARGS="--reps 9 --secs 0.4"
    PY_THR_ARGS="--reps 5 --secs 1.0"
    PY_IMPORT_ARGS="--reps 7"
    GO_ARGS="--reps 7 --secs 1.0"
    JOURNAL_STORE_ARGS="--secs 1.0 --threads 1,4"
    JOURNAL_CALL_ARGS="--reps 7 --block 2000"
else
    SEQ_ARGS="--reps 5 --block 500"
    TPUT_ARGS="--reps 2 --secs 0.3"
    MEM_CHECKPOINTS="10000,50000"
    INFL_ARGS="--n 16 --latency-ms 200"
    MICRO_ARGS="--reps 3 --min-ms 20"
    PY_SEQ_ARGS="--reps 3 --secs 0.1"
    PY_THR_ARGS="--reps 2 --secs 0.3"
    PY_IMPORT_ARGS="--reps 3"
    GO_ARGS="--reps 2 --secs 0.3"
    JOURNAL_STORE_ARGS="--secs 0.1 --threads 1"
    JOURNAL_CALL_ARGS="--reps 2 --block 200"
fi

say() { printf '== %s\n' "$*" >&2; }
BUILD_FAILURES=() # what failed to configure or build; any makes the exit status 1
build_failed() { say "$*"; BUILD_FAILURES+=("$*"); }
want() { case ",$ONLY," in *",$1,"*) return 0 ;; *) return 1 ;; esac; }
# notrun SUITE NAME REASON: a row the report prints as "not run: REASON".
notrun() {
    python3 -c 'import json,sys; print(json.dumps({"suite":sys.argv[1],"name":sys.argv[2],"not_run":sys.argv[3]}))' \
        "$1" "$2" "$3" >>"$RESULTS"
    say "not run: $1/$2: $3"
}
# run LOGNAME CMD...: stdout (JSON lines) to the results, stderr to a log and the terminal.
run() {
    local name=$1; shift
    "$@" 2>&1 >>"$RESULTS" | tee "$LOGS/$name.log" >&2
    return "${PIPESTATUS[0]}"
}
last_line() { grep -v '^\s*$' "$1" 2>/dev/null | tail -n 1 | cut -c1-200; }

# ------------------------------------------------------------- placement
# Sequential runs: client and simulator pinned to one CPU (they take turns, as
# a caller waiting on its answer does; a cross-core hand-off costs 3x and
# flips with the scheduler). Concurrent runs: every CPU, shared by both.
CPUS=$(python3 -c 'import os; print(",".join(str(c) for c in sorted(os.sched_getaffinity(0))))')
CPU_SEQ=${CPUS%%,*}
NCPU=$(echo "$CPUS" | tr ',' '\n' | wc -l)
HAVE_TASKSET=1
command -v taskset >/dev/null || HAVE_TASKSET=0
PLACE_SEQ="client and llmux-sim pinned to CPU $CPU_SEQ (taskset)"
PLACE_ALL="client and llmux-sim unpinned, sharing CPUs $CPUS"
if [ $HAVE_TASKSET = 0 ]; then PLACE_SEQ="unpinned (no taskset)"; fi
pin() { # pin CPULIST CMD...
    local cpus=$1; shift
    if [ $HAVE_TASKSET = 1 ]; then taskset -c "$cpus" "$@"; else "$@"; fi
}

# ---------------------------------------------------------------- meta
python3 "$ROOT/bench/report.py" meta --mode "$MODE" --root "$ROOT" >>"$RESULTS"
for part in seq tput mem micro journal py go; do
    if ! want $part; then
        case $part in
        mem) suites="mem inflight" ;;
        py) suites="py_seq py_tput py_import" ;;
        *) suites=$part ;;
        esac
        for s in $suites; do notrun "$s" "*" "excluded by --only $ONLY"; done
    fi
done

# ---------------------------------------------------------------- build
if [ $DO_BUILD = 1 ]; then
    say "build (Release) in $BUILD/build"
    if ! cmake -S "$ROOT" -B "$BUILD/build" -DCMAKE_BUILD_TYPE=Release -DLLMUX_BUILD_TESTS=OFF \
        -DLLMUX_BUILD_EXAMPLES=OFF >"$LOGS/configure.log" 2>&1; then
        build_failed "cmake configure failed: $(last_line "$LOGS/configure.log")"
    fi
    for t in llmux llmux_static llmux-sim llmux_bench_floor bench_core bench_floor_only bench_mem \
        bench_micro bench_journal; do
        if ! cmake --build "$BUILD/build" --target "$t" -j "$NCPU" >"$LOGS/build-$t.log" 2>&1; then
            build_failed "build of $t failed: $(grep -m1 -E 'error|Error' "$LOGS/build-$t.log" | cut -c1-200)"
        fi
    done
    rm -rf "$BUILD/prefix"
    if [ -e "$BUILD/build/lib/libllmux.so" ]; then
        cmake --install "$BUILD/build" --prefix "$BUILD/prefix" >"$LOGS/install.log" 2>&1 ||
            build_failed "install failed: $(last_line "$LOGS/install.log")"
    fi
fi
LIBLLMUX=$BUILD/build/lib/libllmux.so
FLOORLIB=$BUILD/build/lib/libllmux_bench_floor.so
why_missing() { # why_missing TARGET: the reason a binary is absent
    local log=$LOGS/build-$1.log
    if [ -s "$log" ]; then
        echo "$1 did not build: $(grep -m1 -E 'error|No rule|No such|not found' "$log" | cut -c1-160)"
    else
        echo "$1 is not built (no build in $BUILD/build)"
    fi
}

# ------------------------------------------------------------ simulator
SIM_PID=""
BASE=""
cleanup() {
    if [ -n "$SIM_PID" ]; then kill "$SIM_PID" 2>/dev/null; wait "$SIM_PID" 2>/dev/null; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ -x "$BIN/llmux-sim" ]; then
    rm -f "$BUILD/sim.port"
    # taskset execs the simulator, so $! is the simulator's own pid
    if [ $HAVE_TASKSET = 1 ]; then
        taskset -c "$CPU_SEQ" "$BIN/llmux-sim" --port 0 --port-file "$BUILD/sim.port" --quiet \
            >"$LOGS/sim.log" 2>&1 &
    else
        "$BIN/llmux-sim" --port 0 --port-file "$BUILD/sim.port" --quiet >"$LOGS/sim.log" 2>&1 &
    fi
    SIM_PID=$!
    for _ in $(seq 100); do [ -s "$BUILD/sim.port" ] && break; sleep 0.1; done
    if [ -s "$BUILD/sim.port" ]; then
        BASE="http://127.0.0.1:$(tr -d '\n' <"$BUILD/sim.port")"
        say "llmux-sim (pid $SIM_PID) at $BASE"
    else
        SIM_REASON="llmux-sim did not start: $(last_line "$LOGS/sim.log")"
        kill "$SIM_PID" 2>/dev/null; SIM_PID=""
    fi
else
    SIM_REASON=$(why_missing llmux-sim)
fi
pin_sim() { # pin_sim CPULIST: move every simulator thread
    if [ -n "$SIM_PID" ] && [ $HAVE_TASKSET = 1 ]; then taskset -a -p -c "$1" "$SIM_PID" >/dev/null; fi
}
have_sim() { [ -n "$BASE" ]; }

# ------------------------------------------------------------ C: seq, tput
core_bin() { # the llmux bench if it built, else the floor-only one
    if [ -x "$BIN/bench_core" ]; then echo "$BIN/bench_core"; elif [ -x "$BIN/bench_floor_only" ]; then echo "$BIN/bench_floor_only"; fi
}
for part in seq tput; do
    want $part || continue
    if ! have_sim; then notrun $part "*" "$SIM_REASON"; continue; fi
    B=$(core_bin)
    if [ -z "$B" ]; then notrun $part "*" "$(why_missing bench_core)"; continue; fi
    if [ "$B" = "$BIN/bench_floor_only" ]; then
        notrun $part llmux "$(why_missing bench_core) (floor rows only)"
    fi
    if [ $part = seq ]; then
        say "seq: one caller, floor and llmux in alternating blocks ($PLACE_SEQ)"
        pin_sim "$CPU_SEQ"
        run seq pin "$CPU_SEQ" "$B" seq --base "$BASE" $SEQ_ARGS --placement "$PLACE_SEQ" --sim-pid "$SIM_PID" ||
            notrun seq run "bench_core seq failed: $(last_line "$LOGS/seq.log")"
    else
        say "tput: 1-32 threads sharing one gateway ($PLACE_ALL)"
        pin_sim "$CPUS"
        run tput "$B" tput --base "$BASE" --threads 1,2,4,8,32 $TPUT_ARGS --placement "$PLACE_ALL" --sim-pid "$SIM_PID" ||
            notrun tput run "bench_core tput failed: $(last_line "$LOGS/tput.log")"
    fi
done

# ------------------------------------------------------------------ memory
if want mem; then
    if ! have_sim; then
        notrun mem "*" "$SIM_REASON"
    elif [ ! -x "$BIN/bench_mem" ]; then
        notrun mem "*" "$(why_missing bench_mem)"
    else
        say "mem: RSS over $MEM_CHECKPOINTS calls ($PLACE_SEQ)"
        pin_sim "$CPU_SEQ"
        run mem pin "$CPU_SEQ" "$BIN/bench_mem" rss --base "$BASE" --checkpoints "$MEM_CHECKPOINTS" \
            --placement "$PLACE_SEQ" || notrun mem rss "bench_mem rss failed: $(last_line "$LOGS/mem.log")"
        say "mem: peak heap bytes per call in flight ($PLACE_ALL)"
        pin_sim "$CPUS"
        run inflight "$BIN/bench_mem" inflight --base "$BASE" $INFL_ARGS --placement "$PLACE_ALL" ||
            notrun inflight run "bench_mem inflight failed: $(last_line "$LOGS/inflight.log")"
    fi
fi

# ------------------------------------------------------------------- micro
if want micro; then
    if [ ! -x "$BIN/bench_micro" ]; then
        notrun micro "*" "$(why_missing bench_micro)"
    else
        MCPU=${CPUS##*,} # the last CPU: away from the (idle) simulator
        say "micro: ns per operation (pinned to CPU $MCPU)"
        run micro pin "$MCPU" "$BIN/bench_micro" $MICRO_ARGS --placement "pinned to CPU $MCPU" ||
            notrun micro run "bench_micro failed: $(last_line "$LOGS/micro.log")"
    fi
fi

# ----------------------------------------------------------------- journal
# The ledger journal (docs/ledger.md): settles/s into the store under each
# fsync policy, and the one-caller time with it on. bench_journal prints its
# own markdown tables, which the report includes as they are.
JOURNAL_MD=$LOGS/journal.md
: >"$JOURNAL_MD"
if want journal; then
    if [ ! -x "$BIN/bench_journal" ]; then
        echo "not run: $(why_missing bench_journal)" >"$JOURNAL_MD"
    elif [ -z "$BASE" ]; then
        echo "not run: $SIM_REASON" >"$JOURNAL_MD"
    else
        JCPU=${CPUS##*,}
        JDIR=$(mktemp -d "$BUILD/journal.XXXXXX")
        say "journal: the store under each fsync policy, pinned to CPU $JCPU; one caller with it on"
        { echo "Settles per second into the store alone (no HTTP), pinned to CPU $JCPU, the files in \`$BUILD\`:"
          echo
          pin "$JCPU" "$BIN/bench_journal" store --dir "$JDIR" $JOURNAL_STORE_ARGS
          echo
          echo "One caller through the gateway, client and simulator pinned to CPU $CPU_SEQ, without and with a journal in alternating blocks:"
          echo
          pin "$CPU_SEQ" "$BIN/bench_journal" call --base "$BASE" --dir "$JDIR" $JOURNAL_CALL_ARGS
        } >"$JOURNAL_MD" 2>"$LOGS/journal.log" ||
            echo "not run: bench_journal failed: $(last_line "$LOGS/journal.log")" >"$JOURNAL_MD"
        rm -rf "$JDIR"
    fi
else
    echo "not run: excluded by --only $ONLY" >"$JOURNAL_MD"
fi

# ------------------------------------------------------------------ python
if want py; then
    PY=python3
    if [ $USE_VENV = 1 ] && [ ! -x "$VENV/bin/python" ] && [ "$MODE" = full ]; then
        say "creating $VENV (openai, litellm; once, cached)"
        { python3 -m venv "$VENV" &&
            "$VENV/bin/pip" install -q -r "$ROOT/bench/python/requirements.txt"; } \
            >"$LOGS/venv.log" 2>&1 || { say "venv failed: $(last_line "$LOGS/venv.log")"; rm -rf "$VENV"; }
    fi
    SKIP=""
    SKIP_REASON=""
    if [ $USE_VENV = 1 ] && [ -x "$VENV/bin/python" ]; then
        PY=$VENV/bin/python
    else
        SKIP="openai,litellm"
        if [ $USE_VENV = 0 ]; then
            SKIP_REASON="no venv with openai and litellm (--no-venv)"
        elif [ "$MODE" = quick ]; then
            SKIP_REASON="no venv with openai and litellm at $VENV (--quick does not create it; --full does)"
        else
            SKIP_REASON="the venv with openai and litellm could not be created: $(last_line "$LOGS/venv.log")"
        fi
    fi
    if ! have_sim; then
        notrun py_seq "*" "$SIM_REASON"
        notrun py_tput "*" "$SIM_REASON"
    else
        export PYTHONPATH=$ROOT/bindings/python${PYTHONPATH:+:$PYTHONPATH}
        export LLMUX_LIB_PATH=$LIBLLMUX
        export LITELLM_LOCAL_MODEL_COST_MAP=True
        FL=""
        [ -e "$FLOORLIB" ] && FL=$FLOORLIB
        say "python: one caller ($PLACE_SEQ) with $PY"
        pin_sim "$CPU_SEQ"
        run py_seq pin "$CPU_SEQ" "$PY" "$ROOT/bench/python/bench_py.py" --phase seq --base "$BASE" \
            --floor-lib "$FL" --skip "$SKIP" --skip-reason "$SKIP_REASON" $PY_SEQ_ARGS --placement "$PLACE_SEQ" ||
            notrun py_seq run "bench_py.py seq failed: $(last_line "$LOGS/py_seq.log")"
        say "python: 8 threads ($PLACE_ALL)"
        pin_sim "$CPUS"
        run py_tput "$PY" "$ROOT/bench/python/bench_py.py" --phase threads --threads 8 --base "$BASE" \
            --floor-lib "$FL" --skip "$SKIP" --skip-reason "$SKIP_REASON" $PY_THR_ARGS --placement "$PLACE_ALL" ||
            notrun py_tput run "bench_py.py threads failed: $(last_line "$LOGS/py_tput.log")"
    fi
    say "python: cold import times"
    PYTHONPATH=$ROOT/bindings/python LITELLM_LOCAL_MODEL_COST_MAP=True \
        run py_import "$PY" "$ROOT/bench/python/bench_py.py" --phase import --base "${BASE:-http://127.0.0.1:9}" \
        --skip "$SKIP" --skip-reason "$SKIP_REASON" $PY_IMPORT_ARGS ||
        notrun py_import run "bench_py.py import failed: $(last_line "$LOGS/py_import.log")"
fi

# ---------------------------------------------------------------------- go
if want go; then
    GOBIN_OUT=$BUILD/bench_go
    rm -f "$GOBIN_OUT"
    if ! command -v go >/dev/null; then
        notrun go "*" "no go toolchain"
    elif ! have_sim; then
        notrun go "*" "$SIM_REASON"
    else
        PCDIR=$(ls -d "$BUILD"/prefix/lib*/pkgconfig 2>/dev/null | head -n1)
        export PKG_CONFIG_PATH=${PCDIR}${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
        export LD_LIBRARY_PATH=$(dirname "${PCDIR:-$BUILD/prefix/lib/x}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
        export CGO_ENABLED=1 GOTOOLCHAIN=local GOFLAGS="-buildvcs=false ${GOFLAGS:-}"
        say "go: building bench/go"
        GO_NOTE=""
        if [ -z "$PCDIR" ] || ! (cd "$ROOT/bench/go" && go build -tags llmux -o "$GOBIN_OUT" .) \
            >"$LOGS/go-build.log" 2>&1; then
            GO_NOTE="the Go binding did not build: $(grep -m1 -v '^#' "$LOGS/go-build.log" | cut -c1-160)"
            [ -z "$PCDIR" ] && GO_NOTE="the Go binding needs libllmux installed (llmux.pc); the library did not build"
            [ -n "$PCDIR" ] && build_failed "go: $GO_NOTE"
            (cd "$ROOT/bench/go" && go build -o "$GOBIN_OUT" .) >>"$LOGS/go-build.log" 2>&1
        fi
        if [ ! -x "$GOBIN_OUT" ]; then
            notrun go "*" "bench/go did not build: $(last_line "$LOGS/go-build.log")"
        else
            [ -n "$GO_NOTE" ] && [ -z "$PCDIR" ] && say "go: $GO_NOTE"
            say "go: 1 goroutine ($PLACE_SEQ)"
            pin_sim "$CPU_SEQ"
            run go1 pin "$CPU_SEQ" "$GOBIN_OUT" -base "$BASE" -goroutines 1 $GO_ARGS -placement "$PLACE_SEQ" ||
                notrun go g1 "bench_go failed: $(last_line "$LOGS/go1.log")"
            say "go: 8 goroutines ($PLACE_ALL)"
            pin_sim "$CPUS"
            run go8 "$GOBIN_OUT" -base "$BASE" -goroutines 8 $GO_ARGS -placement "$PLACE_ALL" ||
                notrun go g8 "bench_go failed: $(last_line "$LOGS/go8.log")"
        fi
    fi
fi

# ------------------------------------------- the Go binding's own benchmarks
# BenchmarkChat / BenchmarkChatParallel from bindings/go (its TestMain starts
# its own llmux-sim, which inherits the test's placement). Full mode only.
if want go && [ "$MODE" = full ]; then
    GOTEST=$BUILD/llmux-go.test
    rm -f "$GOTEST"
    if ! command -v go >/dev/null || [ ! -x "$BIN/llmux-sim" ] || [ -z "${PCDIR:-}" ]; then
        notrun go_bench "*" "needs go, llmux-sim and an installed libllmux"
    elif ! (cd "$ROOT/bindings/go" && go test -c -o "$GOTEST" .) >"$LOGS/go-test-build.log" 2>&1; then
        notrun go_bench "*" "the Go binding's tests did not build: $(last_line "$LOGS/go-test-build.log")"
    else
        for spec in "BenchmarkChat:$CPU_SEQ:$PLACE_SEQ" "BenchmarkChatParallel:$CPUS:$PLACE_ALL"; do
            name=${spec%%:*}; rest=${spec#*:}; cpus=${rest%%:*}; place=${rest#*:}
            say "go: the binding's $name ($place)"
            (cd "$ROOT/bindings/go" && LLMUX_SIM=$BIN/llmux-sim pin "$cpus" "$GOTEST" -test.run '^$' \
                -test.bench "^$name\$" -test.benchtime 1s -test.count 5) >"$LOGS/go-$name.log" 2>&1
            python3 - "$name" "$place" "$LOGS/go-$name.log" >>"$RESULTS" <<'PY'
import json, re, sys
name, place, log = sys.argv[1:4]
ns, allocs = [], []
for line in open(log):
    m = re.match(r"^%s(-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?(\d+) allocs/op)?" % name, line)
    if m:
        ns.append(float(m.group(2)))
        if m.group(3):
            allocs.append(int(m.group(3)))
if ns:
    print(json.dumps({"suite": "go_bench", "name": name, "unit": "ns/op", "placement": place,
                      "allocs_per_op": allocs[0] if allocs else None, "samples": ns}))
else:
    tail = [l.strip() for l in open(log) if l.strip()][-1:] or ["no output"]
    print(json.dumps({"suite": "go_bench", "name": name, "not_run": "no result: " + tail[0][:200]}))
PY
        done
    fi
fi

# ------------------------------------------------------------------ report
T_END=$(date +%s)
python3 -c 'import json,os,sys; print(json.dumps({"suite":"meta_end","seconds":int(sys.argv[1]),"loadavg_end":os.getloadavg()}))' \
    "$((T_END - T_START))" >>"$RESULTS"
python3 "$ROOT/bench/report.py" render --in "$RESULTS" --json-out "$OUT" --md "$MD" \
    --journal-md "$JOURNAL_MD"
say "results: $OUT"
say "report:  $MD"
say "took $((T_END - T_START)) s"
# A smoke run fails on broken benchmarks, not on noisy figures: a failed
# configure or build, calls that failed, or the core C rows not running at all.
if [ ${#BUILD_FAILURES[@]} -gt 0 ]; then
    for f in "${BUILD_FAILURES[@]}"; do say "FAILED: $f"; done
    say "FAILED: the build did not complete (logs in $LOGS)"; exit 1
fi
if grep -q "calls failed | \*\*MISSED\*\*" "$MD"; then
    say "FAILED: some benchmark calls failed (see $MD)"; exit 1
fi
if want seq && grep -q "^| one caller: llmux adds .*not run" "$MD"; then
    say "FAILED: the one-caller benchmark did not run (see $MD)"; exit 1
fi
