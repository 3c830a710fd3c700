#!/usr/bin/env bash
# Installs clipgen's build and test dependencies from Debian 12 packages (idempotent, run as root),
# then configures and builds.   usage: scripts/setup.sh [--deps-only] [--farm]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
deps_only=0; farm=0
for a in "$@"; do case "$a" in --deps-only) deps_only=1;; --farm) farm=1;; esac; done

pkgs=(build-essential cmake ninja-build pkg-config git
      libtorch-dev libopenblas0-openmp libopenblas-openmp-dev
      libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev libswscale-dev libswresample-dev
      ffmpeg fonts-dejavu-core libfontconfig-dev libtbb-dev libyaml-cpp-dev libspdlog-dev libfmt-dev libgtest-dev libgmock-dev
      nlohmann-json3-dev libcli11-dev libbenchmark-dev)
[ "$farm" = 1 ] && pkgs+=(slurm-wlm munge)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# LibTorch must use OpenBLAS (openmp flavour), not the reference BLAS.
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    cand=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
    [ -n "$cand" ] && { SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo; $SUDO update-alternatives --set "$alt" "$cand" >/dev/null; }
  done
fi
[ "$deps_only" = 1 ] && exit 0
cmake -S "$here" -B "$here/build" -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build "$here/build" -j"$(nproc)"
