#!/usr/bin/env bash
# Run ON the GPU machine, from the repository root (the device tool's `run`, carrying ".device"; see
# docs/device.md). Builds clipgen's fixture checker against the machine's PyTorch wheel (LibTorch 2.x,
# CUDA) with the Debian build deps that scripts/device-deps.sh packed into .device/root.tar.xz, then runs
# every reference fixture on cuda and on cpu (the 2.x SDPA attention path on both) and writes logs and a
# summary under $OUT (at most 8 files: the device tool brings back no more).
#
# Steps and their time budgets (seconds; caps, not estimates: a run is planned for ~6 minutes, give it a
# timeout_s of 590; the optional bench and test-suite steps fill what is left of 575 s):  preflight 30 · configure 90 · build 300 · fixtures on cuda 60 · on cpu 60 · pipeline
# fixtures on cuda in fp16 and bf16 20 + 20 (the whole fixture tree takes a few seconds on 2 CPU cores here).
# A step that runs out of budget or fails is reported; later steps that need it are skipped.
#   $OUT/summary.txt        one line per step, and the fixture pass/fail counts
#   $OUT/env.txt            nvidia-smi, torch/CUDA/compiler versions, what .device holds
#   $OUT/build.log          cmake, ninja, and the linked program's shared libraries (ldd)
#   $OUT/fixtures-cuda.txt  clipgen-fixture-check --device cuda tests/data/fixtures
#   $OUT/fixtures-cpu.txt   the same with --device cpu
#   $OUT/fixtures-precision.txt  --device cuda --precision fp16, then bf16, on tests/data/fixtures/pipelines
#                           (the SD and SVD stages with their models in reduced precision: precision: auto
#                           renders fp16 on CUDA)
#   $OUT/bench.txt          bench_unet --device cuda (SD1.5 UNet step, 512² and 1024², fp32/bf16/fp16), then
#                           --device cpu at 256², in whatever is left of 560 s after the fixtures
#   $OUT/tests.txt          only when .device carries GoogleTest (scripts/device-deps.sh --with-tests): every
#                           target that links without libav's run-time libraries is built (ninja -k 0), then
#                           ctest -LE 'gpu|farm-manual' runs them against LibTorch 2.x on the CPU, in the time
#                           left of 575 s. Informational: it does not decide the exit status.
# Exit status: 0 when every fixture passes on both devices, 1 when a step or fixture fails, 2 when a
# prerequisite is missing (the message says which).
# For trying the script elsewhere: CLIPGEN_TORCH_PREFIX=<dir holding Torch/TorchConfig.cmake> skips the
# python3/torch probe; --configure-only stops after cmake.
set -uo pipefail
configure_only=0
for a in "$@"; do
  case "$a" in
    --configure-only) configure_only=1 ;;
    *) echo "usage: scripts/device-check.sh [--configure-only]" >&2; exit 2 ;;
  esac
done
cd "$(dirname "$0")/.." || exit 2
repo=$(pwd)
OUT=${OUT:-$repo/.device/out}
mkdir -p "$OUT"
summary="$OUT/summary.txt"
: > "$summary"
t_start=$(date +%s)
say() { echo "$*" | tee -a "$summary"; }
seconds_until() { echo $(( $1 - ($(date +%s) - t_start) )); }  # of the run's first $1 seconds, what is left
die() { say "device-check: FATAL: $*"; say "device-check: total $(( $(date +%s) - t_start )) s"; exit 2; }
# step NAME BUDGET LOG CMD...: runs CMD under `timeout BUDGET`, output to LOG; records the result.
step() {
  local name=$1 budget=$2 log=$3; shift 3
  local t0 rc; t0=$(date +%s)
  echo "== $name (budget ${budget}s): $*" >> "$log"
  timeout --kill-after=10 "$budget" "$@" >> "$log" 2>&1; rc=$?
  local dt=$(( $(date +%s) - t0 ))
  if [ $rc = 124 ] || [ $rc = 137 ]; then say "step $name: TIMEOUT after ${dt}s (budget ${budget}s); see $(basename "$log")"
  elif [ $rc = 0 ]; then say "step $name: ok (${dt}s)"
  else say "step $name: FAILED rc=$rc (${dt}s); see $(basename "$log")"; fi
  return $rc
}

# ---- preflight -------------------------------------------------------------------------------------
env_txt="$OUT/env.txt"
{
  echo "date: $(date -u)"; uname -a; echo
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  echo; command -v nvcc >/dev/null && nvcc --version | tail -n 2
  echo; for t in cmake ninja c++ g++ pkg-config tar xz python3; do printf '%-11s %s\n' "$t" "$(command -v $t || echo MISSING)"; done
  cmake --version 2>/dev/null | head -n1; c++ --version 2>/dev/null | head -n1
  echo "c++ finds libstdc++: shared $(c++ -print-file-name=libstdc++.so 2>/dev/null), static $(c++ -print-file-name=libstdc++.a 2>/dev/null)"
  # Whether the machine has libav run-time libraries of its own (clipgen itself could then link there).
  echo "libav on this machine: $( (ldconfig -p 2>/dev/null | grep -oE 'libav(codec|format|filter)\.so\.[0-9]+' | sort -u | tr '\n' ' ') || true)"
} > "$env_txt" 2>&1
for t in python3 cmake ninja c++ tar xz timeout; do
  command -v "$t" >/dev/null || die "'$t' is not on this machine (see $env_txt)"
done
if [ -n "${CLIPGEN_TORCH_PREFIX:-}" ]; then
  torch_info="torch (from CLIPGEN_TORCH_PREFIX)
cuda_available unknown
prefix $CLIPGEN_TORCH_PREFIX"
else
torch_info=$(python3 - <<'PY' 2>&1
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cxx11_abi", torch._C._GLIBCXX_USE_CXX11_ABI)
print("cuda_available", torch.cuda.is_available(), "devices", torch.cuda.device_count(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "-")
print("prefix", torch.utils.cmake_prefix_path)
PY
) || die "python3 cannot import torch: $torch_info"
fi
echo "$torch_info" >> "$env_txt"
torch_prefix=$(echo "$torch_info" | sed -n 's/^prefix //p')
[ -f "$torch_prefix/Torch/TorchConfig.cmake" ] || die "no Torch/TorchConfig.cmake under '$torch_prefix'"
[ -n "${CLIPGEN_TORCH_PREFIX:-}" ] || echo "$torch_info" | grep -q "cxx11_abi True" ||
  say "device-check: WARNING: torch is built with the old C++ ABI; Debian's yaml-cpp/spdlog/fmt use the new one (link errors likely)"
say "device-check: $(echo "$torch_info" | head -n2 | tr '\n' ' ')"

# ---- the carried Debian build deps ----------------------------------------------------------------
root="$repo/.device/root"
if [ ! -d "$root" ]; then
  [ -f "$repo/.device/root.tar.xz" ] || die ".device/root.tar.xz is missing: run scripts/device-deps.sh on the dev machine and carry \".device\""
  tar -C "$repo/.device" -xJf "$repo/.device/root.tar.xz" || die "cannot unpack .device/root.tar.xz"
fi
libdir="$root/usr/lib/x86_64-linux-gnu"
# Debian's .pc files say prefix=/usr (some libdir=/usr/...): point them at .device/root.
for pc in "$libdir"/pkgconfig/*.pc "$root"/usr/share/pkgconfig/*.pc; do
  [ -f "$pc" ] && sed -i -E "s#^(prefix|exec_prefix|libdir|includedir)=/usr#\\1=$root/usr#" "$pc"
done
export PKG_CONFIG_PATH="$libdir/pkgconfig:$root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pkgconf_exe=$(command -v pkg-config || true)
if [ -z "$pkgconf_exe" ]; then
  # The carried pkgconf (Debian's), run with its carried libpkgconf.
  mkdir -p "$repo/.device/bin"
  printf '#!/bin/sh\nLD_LIBRARY_PATH="%s${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "%s" "$@"\n' "$libdir" "$root/usr/bin/pkgconf" > "$repo/.device/bin/pkg-config"
  chmod +x "$repo/.device/bin/pkg-config"
  pkgconf_exe="$repo/.device/bin/pkg-config"
fi
"$pkgconf_exe" --modversion yaml-cpp libavcodec fontconfig >> "$env_txt" 2>&1 ||
  die "pkg-config does not find the carried .pc files (see env.txt)"
{ echo; echo "carried packages:"; cat "$repo/.device/PACKAGES" 2>/dev/null; } >> "$env_txt"

# ---- configure and build ---------------------------------------------------------------------------
bdir="$repo/build-device"
ncores=$(nproc)
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
cuda_root=""; for c in /usr/local/cuda "$(dirname "$(dirname "$(command -v nvcc 2>/dev/null || echo /x/x)")")"; do
  [ -x "$c/bin/nvcc" ] && { cuda_root=$c; break; }; done
# Recent torch wheels ship their own fmt headers (torch/include/fmt, fmt 11/12) next to the torch headers;
# our libfmt.so.9 and spdlog are Debian's fmt 9. An -I folder is searched before every -isystem one, so
# one holding only a link to Debian's fmt makes <fmt/...> mean fmt 9 in every TU.
cxx_flags=""
torch_root=$(cd "$torch_prefix/../.." 2>/dev/null && pwd)
if [ -n "$torch_root" ] && [ -d "$torch_root/include/fmt" ]; then
  mkdir -p "$repo/.device/include-first"
  ln -sfn "$root/usr/include/fmt" "$repo/.device/include-first/fmt"
  cxx_flags="-I$repo/.device/include-first"
  say "device-check: torch ships include/fmt ($(grep -m1 -o 'FMT_VERSION [0-9]*' "$torch_root/include/fmt/base.h" "$torch_root/include/fmt/core.h" 2>/dev/null | head -n1)); Debian's fmt 9 headers are put first"
fi
# GoogleTest is carried only by `scripts/device-deps.sh --with-tests`; then the tests are configured too.
with_tests=OFF
ls "$libdir"/libgtest.a >/dev/null 2>&1 && with_tests=ON
configure_args=(-S "$repo" -B "$bdir" -G Ninja -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=$cxx_flags"
  "-DCLIPGEN_BUILD_TESTS=$with_tests" -DCLIPGEN_BUILD_BENCH=ON
  "-DCMAKE_PREFIX_PATH=$torch_prefix;$root/usr"
  "-DPKG_CONFIG_EXECUTABLE=$pkgconf_exe"
  # Debian's libs need their Debian deps at link time (found through rpath-link); libav's run-time
  # libraries are link placeholders (see scripts/device-deps.sh), so shared-library undefineds are allowed.
  "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$libdir -Wl,--allow-shlib-undefined")
[ -n "$cuda_root" ] && configure_args+=("-DCUDAToolkit_ROOT=$cuda_root" "-DCMAKE_CUDA_COMPILER=$cuda_root/bin/nvcc")
step configure 90 "$OUT/build.log" cmake "${configure_args[@]}" || die "configure failed (see build.log)"
[ "$configure_only" = 1 ] && { say "device-check: --configure-only: stopping after cmake"; exit 0; }

exe="$bdir/parity/clipgen-fixture-check"
if step build 300 "$OUT/build.log" ninja -C "$bdir" -j "$ncores" clipgen_fixture_check; then
  { echo "== ldd $exe"; ldd "$exe"; } >> "$OUT/build.log" 2>&1
  LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" ldd "$exe" | grep -q "not found" &&
    say "device-check: WARNING: $(basename "$exe") misses shared libraries: $(LD_LIBRARY_PATH="$libdir" ldd "$exe" | grep 'not found' | tr -s ' \n' ' ')"
  ldd "$exe" | grep -q libtorch_cuda ||
    say "device-check: WARNING: libtorch_cuda is not loaded by $(basename "$exe") (--as-needed dropped it?): CUDA will look absent"
else
  die "build failed (see build.log: the last error is usually at its end)"
fi
# clipgen itself (and the benches) call libav, whose run-time libraries are not carried (link
# placeholders; see scripts/device-deps.sh): not built here.
say "step clipgen: skipped (libav is not carried; clipgen-fixture-check --version stands in for clipgen version)"

# ---- run the fixtures ------------------------------------------------------------------------------
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
step version 30 "$OUT/fixtures-cuda.txt" "$exe" --version
say "  $(grep -m1 '^libtorch' "$OUT/fixtures-cuda.txt" | cut -c1-400)"
fixtures="$repo/tests/data/fixtures"
rc_all=0
step fixtures-cuda 60 "$OUT/fixtures-cuda.txt" "$exe" --device cuda "$fixtures" || rc_all=1
step fixtures-cpu 60 "$OUT/fixtures-cpu.txt" "$exe" --device cpu "$fixtures" || rc_all=1
for p in fp16 bf16; do
  step "fixtures-cuda-$p" 20 "$OUT/fixtures-precision.txt" "$exe" --device cuda --precision "$p" "$fixtures/pipelines" ||
    rc_all=1
done
grep -E '^summary: precision| FAIL|  ERROR  ' "$OUT/fixtures-precision.txt" | head -n 20 | sed 's/^/  /' | tee -a "$summary"
for f in cuda cpu; do
  log="$OUT/fixtures-$f.txt"
  say "fixtures on $f: $(grep -c ' PASS' "$log") PASS, $(grep -c ' FAIL' "$log") FAIL, $(grep -c '  ERROR  ' "$log") ERROR lines"
  grep -E ' FAIL|  ERROR  ' "$log" | head -n 20 | sed 's/^/  /' | tee -a "$summary"
done
grep '^summary:' "$OUT/fixtures-cuda.txt" | tee -a "$summary"
say "step ctest -L gpu: skipped (no test carries the label gpu; the fixture checks above are the GPU check)"
# ---- GPU benchmark: one SD1.5 UNet step (bench_unet --device cuda), in what time is left ---------------
# Built only now, so that a bench that fails to build or run never costs the fixture results above.
# bench_vae/bench_temporal take no device option and link libav (not carried): not built.
bench_txt="$OUT/bench.txt"
left=$(seconds_until 560)
if [ $left -lt 90 ]; then
  say "step bench: skipped (${left}s left of the run's 560)"
elif step build-bench $(( left / 2 < 150 ? left / 2 : 150 )) "$OUT/build.log" ninja -C "$bdir" -j "$ncores" bench_unet; then
  mem_log="$repo/.device/gpu-mem.txt"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$mem_log" 2>/dev/null &
  mem_pid=$!
  left=$(seconds_until 565)
  step bench-unet-cuda $(( left > 20 ? left - 10 : 10 )) "$bench_txt" "$bdir/bench/bench_unet" --device cuda --sizes 512,1024 --reps 5
  kill "$mem_pid" 2>/dev/null; wait "$mem_pid" 2>/dev/null
  say "bench: GPU memory used (nvidia-smi, sampled every 200 ms, whole process incl. CUDA context and cache): max $(sort -n "$mem_log" 2>/dev/null | tail -n1) MiB"
  grep -E '^(torch|fp32|bf16|fp16)' "$bench_txt" | sed 's/^/  /' | tee -a "$summary"
  left=$(seconds_until 565)
  if [ $left -gt 40 ]; then
    step bench-unet-cpu $(( left - 10 )) "$bench_txt" "$bdir/bench/bench_unet" --device cpu --sizes 256 --reps 2
    grep -E '^(torch|fp32|bf16)' "$bench_txt" | tail -n 3 | sed 's/^/  /' | tee -a "$summary"
  fi
fi
# ---- the test suite against LibTorch 2.x (CPU), when GoogleTest came along ------------------------------
# Every target that links is built (ninja -k 0: clipgen itself, the libav benches and the tests whose
# objects call libav cannot link here, see scripts/device-deps.sh); ctest then runs what exists. A test
# whose executable did not link shows as "Not Run"; tests that start the clipgen binary fail for want of it.
tests_txt="$OUT/tests.txt"
left=$(seconds_until 575)
if [ "$with_tests" != ON ]; then
  say "step tests: skipped (.device carries no GoogleTest: scripts/device-deps.sh --with-tests)"
elif [ $left -lt 120 ]; then
  say "step tests: skipped (${left}s left of the run's 575)"
else
  step build-tests $(( left - 90 < 300 ? left - 90 : 300 )) "$tests_txt" ninja -C "$bdir" -k 0 -j "$ncores" all
  built=$(find "$bdir/tests" -maxdepth 1 -type f -name 'test_*' -perm -u+x | wc -l)
  say "build-tests: $built test executables linked (the rest need libav at run time)"
  left=$(seconds_until 575)
  # 4 tests at a time with 4 threads each (LibTorch would give each one every core).
  step ctest $(( left > 30 ? left - 10 : 20 )) "$tests_txt" env OMP_NUM_THREADS=4 MKL_NUM_THREADS=4 ctest --test-dir "$bdir" -LE 'gpu|farm-manual' -j 4 \
    --timeout 120 --output-on-failure
  grep -E 'tests passed|tests failed' "$tests_txt" | tail -n1 | sed 's/^/  /' | tee -a "$summary"
  grep -E '^\s+[0-9]+ - .*\((Failed|Not Run|Timeout|SEGFAULT|Subprocess aborted|Exception)' "$tests_txt" | head -n 40 |
    sed 's/^ */  /' | tee -a "$summary"
  # Where a test crashed: rerun it alone, under gdb when the machine has it, else with the backtrace
  # tests/test_main.cpp prints, symbolized by scripts/symbolize.sh (addr2line).
  for t in $(grep -E '^\s+[0-9]+ - test_[a-z0-9_]+ \((SEGFAULT|Subprocess aborted|Exception|ILLEGAL|BUS)' "$tests_txt" |
             sed -E 's/^\s+[0-9]+ - (test_[a-z0-9_]+) .*/\1/' | head -n 4); do
    exe="$bdir/tests/$t"; [ -x "$exe" ] || continue
    { echo; echo "== crash of $t, rerun alone (ulimit -s $(ulimit -s))"; } >> "$tests_txt"
    # The one rerun also records where the process binds std::filesystem (LD_DEBUG=bindings, to files
    # bindings.PID): PyTorch's wheels export their own copy of parts of libstdc++ (pytorch/pytorch#133437;
    # cmake/ClipgenDeps.cmake links libstdc++ first against it).
    rm -f "$repo/.device/bindings".*
    if command -v gdb >/dev/null; then
      (cd "$bdir/tests" && timeout 60 gdb -q -batch -ex "set environment LD_DEBUG=bindings" \
         -ex "set environment LD_DEBUG_OUTPUT=$repo/.device/bindings" -ex run -ex "bt 40" -ex "info registers rip" \
         --args "$exe" > "$repo/.device/crash.txt" 2>&1)
    else
      (cd "$bdir/tests" && LD_DEBUG=bindings LD_DEBUG_OUTPUT="$repo/.device/bindings" OMP_NUM_THREADS=4 \
         timeout 60 "$exe" > "$repo/.device/crash-raw.txt" 2>&1
       "$repo/scripts/symbolize.sh" < "$repo/.device/crash-raw.txt" > "$repo/.device/crash.txt")
    fi
    tail -n 80 "$repo/.device/crash.txt" >> "$tests_txt"
    {
      echo "-- link command:"; ninja -C "$bdir" -t commands "tests/$t" | tail -n 1
      echo "-- NEEDED:"; readelf -d "$exe" | grep NEEDED
      echo "-- std::filesystem functions defined in the executable itself (a static libstdc++ copy?): $(nm -C --defined-only "$exe" 2>/dev/null | grep -c ' std::filesystem::')"
      echo "-- where the process binds std::filesystem (LD_DEBUG=bindings):"
      cat "$repo/.device/bindings".* 2>/dev/null | grep -E 'filesystem' | sed -E 's/^ *[0-9]+: *//' | sort | uniq -c |
        sort -rn | head -n 12
    } >> "$tests_txt" 2>&1
    say "crash of $t ($(command -v gdb >/dev/null && echo gdb || echo backtrace+addr2line)), innermost frames:"
    grep -E '^#[0-9]+ |→' "$repo/.device/crash.txt" | grep -v -E 'print_backtrace_and_die|sigaction|__restore_rt' |
      head -n 8 | cut -c1-300 | sed 's/^/  /' | tee -a "$summary"
  done
fi

say "device-check: total $(( $(date +%s) - t_start )) s; result: $([ $rc_all = 0 ] && echo PASS || echo FAIL)"
exit $rc_all
