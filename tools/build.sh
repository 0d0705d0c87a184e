#!/usr/bin/env bash
# Configure and build llmux into DIR (default build/) with extra CMake flags,
# then install it into DIR/prefix (the bindings' tests use that copy).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-$root/build}
shift || true
cmake -S "$root" -B "$dir" -DLLMUX_WERROR=ON "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"
cmake --install "$dir" --prefix "$dir/prefix" >/dev/null
