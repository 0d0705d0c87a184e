#!/usr/bin/env bash
# Every test of llmux: installs what is missing, then
#   1. builds with -Werror and runs the C tests (unit, simulator, integration)
#   2. installs, and builds a program against the install (CMake package, pkg-config)
#   3. builds with ASan+UBSan and runs the C tests again, replays the fuzz corpus and
#      every saved fuzz crash (tests/fuzz), and with TSan runs the threaded tests
#      (test_threads, test_gateway, test_keys: 8 threads against one budget)
#   4. runs the demo, the integration test and test_keys under valgrind (no leaks, no errors)
#   5. runs the Python binding's pytest suite and the Go binding's go vet + go test -race
#      (with openai-go through llmux.RoundTripper: the module bindings/go/sdktest)
#      (and once more linked statically, -tags llmux_static, without LD_LIBRARY_PATH),
#      and the install recipe of docs/go.md from a fresh module outside the repository
#   6. runs the benchmarks in quick (smoke) mode
# and ends with one line "N passed, N failed". Exit status 0 only if all passed.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/tools/setup.sh" || exit 1
jobs=$(nproc)
passed=0 failed=0 failures=()

step() { # step NAME COMMAND...
  local name=$1; shift
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then
    passed=$((passed + 1)); echo "--- ok: $name ($((SECONDS - t0)) s)"
  else
    failed=$((failed + 1)); failures+=("$name"); echo "--- FAILED: $name ($((SECONDS - t0)) s)"
  fi
}

ctest_in() { (cd "$1" && ctest --output-on-failure -j"$jobs" --timeout 600); }

install_check() {
  local prefix=$root/build/prefix work
  work=$(mktemp -d)
  cmake -S tests/install -B "$work" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null &&
    cmake --build "$work" >/dev/null &&
    LD_LIBRARY_PATH=$prefix/lib "$work/use_shared" && "$work/use_static" &&
    cc -std=c11 tests/install/main.c -o "$work/use_pc" \
       $(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs llmux) &&
    LD_LIBRARY_PATH=$prefix/lib "$work/use_pc"
  local rc=$?
  rm -rf "$work"
  return $rc
}

valgrind_check() {
  local vg="valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=9"
  LLMUX_DEMO_WRAPPER="$vg" "$root/tools/demo.sh" >/dev/null &&
    LLMUX_SIM=$root/build/bin/llmux-sim $vg "$root/build/bin/test_gateway" >/dev/null &&
    LLMUX_SIM=$root/build/bin/llmux-sim $vg "$root/build/bin/test_keys" >/dev/null
}

python_tests() {
  [ -d bindings/python/tests ] || { echo "no Python tests"; return 1; }
  python3 -c "import pytest, mypy, openai, langchain_openai, prometheus_client" 2>/dev/null ||
    python3 -m pip install -q -r bindings/python/tests/requirements-test.txt || return 1
  LLMUX_LIB_PATH=$root/build/prefix/lib/libllmux.so LLMUX_SIM=$root/build/bin/llmux-sim \
    python3 -m pytest -q bindings/python/tests
}

go_tests() {
  [ -f bindings/go/go.mod ] || { echo "no Go module"; return 1; }
  (cd bindings/go &&
   export CGO_ENABLED=1 PKG_CONFIG_PATH=$root/build/prefix/lib/pkgconfig \
          LD_LIBRARY_PATH=$root/build/prefix/lib LLMUX_SIM=$root/build/bin/llmux-sim &&
   go vet ./... && go test -race -count=1 ./... &&
   (cd sdktest && go vet ./... && go test -race -count=1 ./...) &&
   go vet -tags llmux_static ./... &&
   env -u LD_LIBRARY_PATH go test -tags llmux_static -count=1 .)
}

# The recipe of docs/go.md, "Install", word for word: a new module in a temp
# dir, go mod edit -replace, go mod tidy (no module proxy: the module is not
# published), then the program built statically (-tags llmux_static) and with
# an rpath, each run without LD_LIBRARY_PATH, and built plainly and run with it.
go_install_check() {
  local prefix=$root/build/prefix work want
  work=$(mktemp -d)
  want="libllmux $(sed -n 's/^Version: //p' "$prefix/lib/pkgconfig/llmux.pc")"
  (cd "$work" && unset LD_LIBRARY_PATH &&
   export CGO_ENABLED=1 PKG_CONFIG_PATH=$prefix/lib/pkgconfig GOPROXY=off GOTOOLCHAIN=local \
          GOFLAGS=-buildvcs=false &&
   cp "$root/bindings/go/testdata/install/main.go" . &&
   go mod init example.com/hello &&
   go mod edit -replace github.com/llmux/llmux/bindings/go="$root/bindings/go" &&
   go mod tidy &&
   go build -tags llmux_static -o hello-static . &&
   ! ldd hello-static | grep -q libllmux &&
   [ "$(./hello-static)" = "$want" ] &&
   CGO_LDFLAGS="-Wl,-rpath,$prefix/lib" go build -o hello-rpath . &&
   [ "$(./hello-rpath)" = "$want" ] &&
   go build -o hello . &&
   [ "$(LD_LIBRARY_PATH=$prefix/lib ./hello)" = "$want" ] &&
   echo "ok: $want, static, rpath and LD_LIBRARY_PATH builds")
  local rc=$?
  rm -rf "$work"
  return $rc
}

step "build (-Werror)" "$root/tools/build.sh" "$root/build"
step "C tests" ctest_in build
step "install: CMake package and pkg-config" install_check
step "build with ASan+UBSan" "$root/tools/build.sh" "$root/build-asan" -DLLMUX_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
step "C tests under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 bash -c "cd build-asan && ctest --output-on-failure -j$jobs --timeout 600"
step "fuzz corpus regression under ASan+UBSan" env ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 "$root/tests/fuzz/run.sh" --regress "$root/build-asan"
step "build with ThreadSanitizer" "$root/tools/build.sh" "$root/build-tsan" -DLLMUX_TSAN=ON -DCMAKE_BUILD_TYPE=Debug
step "threaded tests under TSan" env TSAN_OPTIONS=halt_on_error=1 bash -c "cd build-tsan && ctest --output-on-failure --timeout 600 -R 'test_threads|test_gateway|test_log|test_journal|test_keys'"
step "valgrind: demo and integration test" valgrind_check
step "Python binding (pytest)" python_tests
step "Go binding (go vet, go test -race; static build)" go_tests
step "Go binding: install recipe from a fresh module" go_install_check
if [ -x bench/run.sh ]; then
  step "benchmarks, quick smoke run" bench/run.sh --quick --no-venv
fi

echo
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
