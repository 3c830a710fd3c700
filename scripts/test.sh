#!/usr/bin/env bash
# Builds clipgen and runs the whole default test suite (what CI runs).
#   usage: scripts/test.sh [extra ctest args]     e.g. scripts/test.sh -L slow   or   -LE slow
# Tests labelled `gpu` need a CUDA device and are skipped here.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
"$here/scripts/setup.sh" --deps-only
build=${CLIPGEN_BUILD_DIR:-$here/build}
cmake -S "$here" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" -LE gpu --timeout 1500 "$@"
