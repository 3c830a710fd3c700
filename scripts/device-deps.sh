#!/usr/bin/env bash
# Run HERE (Debian 12, with network), before a device session: downloads (apt-get download, installs
# nothing) the .deb files of clipgen's build deps that the GPU machine lacks, extracts them with
# dpkg -x into .device/root, prunes docs/man pages/static archives we do not link, and prints the size.
# The device run then carries ".device" (see docs/device.md); scripts/device-check.sh uses it.
#
# Size is the constraint: a device run carries at most 64 MiB, and the tracked tree alone is ~50 MiB
# (tests/data/fixtures is 46 MB), so .device must stay under ~14 MiB. Hence, NOT carried:
#   * LibTorch and CUDA (the device's PyTorch wheel provides them);
#   * what a CUDA/Ubuntu build image has anyway (libc, libstdc++, gcc, zlib, ...; see BASE_RE below);
#   * libav at run time: Debian's libavcodec59/libavfilter8/... are 31 MiB unpacked, and their codec
#     closure (x264, x265, aom, dav1d, rsvg, flite, ...) ~250 MB more (88 MiB as .debs). Only the libav
#     -dev packages come (headers, .pc files, so that clipgen_stages compiles); their lib*.so link names
#     become comment-only linker scripts ("link placeholders"). A program that calls no libav function
#     (clipgen-fixture-check, linked --as-needed) links and runs; clipgen itself and the benches do not
#     link on the device (undefined av_* symbols), which device-check.sh reports and skips (bench_unet
#     links no libav and runs there);
#   * GoogleTest and fonts-dejavu-core, unless --with-tests: then device-check.sh also builds every test
#     that links without libav and runs them against LibTorch 2.x on the CPU (.device ~1.5 MiB bigger).
# The result is one archive, .device/root.tar.xz (~3 MiB; device-check.sh unpacks it to .device/root),
# plus .device/PACKAGES. --keep-root also leaves the unpacked .device/root here (do not carry it).
# usage: scripts/device-deps.sh [--with-tests] [--keep-debs] [--keep-root]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dev="$here/.device"
keep_debs=0; with_tests=0; keep_root=0
for a in "$@"; do
  case "$a" in
    --keep-debs) keep_debs=1 ;;
    --with-tests) with_tests=1 ;;
    --keep-root) keep_root=1 ;;
    *) echo "usage: scripts/device-deps.sh [--with-tests] [--keep-debs] [--keep-root]" >&2; exit 2 ;;
  esac
done
for t in apt-get apt-cache dpkg python3; do
  command -v "$t" >/dev/null || { echo "device-deps: '$t' not found (run this on the Debian 12 dev machine)" >&2; exit 2; }
done

# What we link or include (the same list as scripts/setup.sh, less libtorch/openblas/ffmpeg CLI/tools),
# plus pkg-config itself (the device image may lack it).
ROOTS=(libyaml-cpp-dev libspdlog-dev libfmt-dev libtbb-dev
       libavcodec-dev libavformat-dev libavfilter-dev libavutil-dev libswscale-dev libswresample-dev
       nlohmann-json3-dev libcli11-dev libfontconfig-dev pkgconf)
[ "$with_tests" = 1 ] && ROOTS+=(libgtest-dev libgmock-dev fonts-dejavu-core)
# libav's run-time libraries (and so their codec closure) stay behind; see above.
LIBAV_RT=(libavcodec59 libavformat59 libavfilter8 libavutil57 libswscale6 libswresample4 libpostproc56)
# catch2 comes in through libcli11-dev's dependencies, fonts through fontconfig-config; a build needs neither.
SKIP=("${LIBAV_RT[@]}" catch2)
[ "$with_tests" = 1 ] || SKIP+=(fonts-dejavu-core)
# Present on the device (Ubuntu-based CUDA build image) or not ours to carry.
BASE_RE='^(libc6|libc6-dev|libc-dev-bin|libc-bin|linux-libc-dev|libcrypt1|libcrypt-dev|libnsl2|libnsl-dev|libtirpc.*|libgcc-s1|libgcc-.*-dev|gcc|gcc-[0-9]+|gcc-[0-9]+-base|g\+\+|g\+\+-[0-9]+|cpp|cpp-[0-9]+|libstdc\+\+6|libstdc\+\+-[0-9]+-dev|binutils.*|libbinutils|libctf.*|libgprofng0|libjansson4|libasan[0-9]+|libtsan[0-9]+|libubsan[0-9]+|liblsan[0-9]+|libhwasan[0-9]+|libitm1|libatomic1|libquadmath0|libgomp1|libcc1-0|libisl[0-9]+|libmpc3|libmpfr6|libgmp10|libzstd1|zlib1g|liblzma5|libbz2-1\.0|libselinux1|libpcre2-8-0|libmd0|libbsd0|debconf|dpkg|perl-base|tar|coreutils|sensible-utils|init-system-helpers|adduser|passwd|ucf|lsb-base|python3.*|libpython3.*|libtorch.*|libcuda.*|nvidia-.*|cuda-.*|libnccl.*|libcudnn.*|libcublas.*|libopenblas.*|libblas.*|liblapack.*|libgfortran5|libhwloc.*|libnuma1|libudev1|libsystemd0|libcap2|libgcrypt20|libgpg-error0|liblz4-1|libdb5\.3|libaudit.*|libpam.*|libsemanage.*|libsepol.*|libacl1|libattr1|libtinfo6|libncursesw6)$'

lists=$(mktemp -d)
trap 'rm -rf "$lists"' EXIT
python3 - "$lists/pkgs" "$BASE_RE" "${SKIP[*]}" "${ROOTS[@]}" <<'PY'
import re, subprocess, sys
out, base_re, skip, roots = sys.argv[1], re.compile(sys.argv[2]), set(sys.argv[3].split()), sys.argv[4:]
def deps(pkg):
    r = subprocess.run(["apt-cache", "depends", "--no-recommends", "--no-suggests", "--no-conflicts", "--no-breaks",
                        "--no-replaces", "--no-enhances", pkg], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"device-deps: apt-cache depends {pkg} failed: {r.stderr.strip()}")
    found, alt = [], False
    lines = r.stdout.splitlines()[1:]
    for i, line in enumerate(lines):
        s = line.strip()
        m = re.match(r"^\|?(Pre)?Depends: (.+)$", s)
        if not m:
            continue
        name = m.group(2).split(":")[0] if not m.group(2).startswith("<") else m.group(2)
        first_of_group = not alt
        alt = s.startswith("|")  # the next line is an alternative of this one
        if not first_of_group:
            continue
        if name.startswith("<"):
            # virtual: take its first provider, listed on the indented lines below
            prov = [l.strip() for l in lines[i + 1:i + 3] if l.startswith("    ") and ":" not in l.strip()]
            if prov:
                found.append(prov[0])
            continue
        found.append(name)
    return found
seen, todo = set(), list(roots)
while todo:
    p = todo.pop()
    if p in seen or p in skip or base_re.match(p):
        continue
    seen.add(p)
    todo.extend(deps(p))
open(out, "w").write("\n".join(sorted(seen)) + "\n")
PY
mapfile -t pkgs < "$lists/pkgs"
echo "device-deps: ${#pkgs[@]} packages: ${pkgs[*]}"

rm -rf "$dev/debs" "$dev/root" "$dev/root.tar.xz"
mkdir -p "$dev/debs" "$dev/root"
(cd "$dev/debs" && apt-get download -q "${pkgs[@]}" >/dev/null) ||
  { echo "device-deps: apt-get download failed (apt-get update first? network?)" >&2; exit 1; }
for f in "$dev"/debs/*.deb; do dpkg -x "$f" "$dev/root"; done
debs_size=$(du -sh "$dev/debs" | cut -f1)
[ "$keep_debs" = 1 ] || rm -rf "$dev/debs"

# Prune what a build on the device does not read: docs, man pages, locale data, lintian overrides,
# and static archives of libraries we link shared (gtest/gmock ship only static ones: kept).
r="$dev/root"
rm -rf "$r/usr/share/doc" "$r/usr/share/man" "$r/usr/share/info" "$r/usr/share/locale" "$r/usr/share/lintian" \
       "$r/usr/share/bug" "$r/usr/share/gdb" "$r/usr/share/aclocal" "$r/usr/share/doc-base"
find "$r" -name '*.a' ! -name 'libgtest*.a' ! -name 'libgmock*.a' -delete
# libav link placeholders: the -dev packages' lib*.so links point at the run-time libraries left behind.
n_ph=0
for l in "$r"/usr/lib/x86_64-linux-gnu/lib{avcodec,avformat,avfilter,avutil,swscale,swresample,postproc}.so; do
  [ -L "$l" ] || [ -e "$l" ] || continue
  rm -f "$l"
  printf '/* clipgen device build: link placeholder for %s (run-time library not carried; see scripts/device-deps.sh).\n   A program that calls libav does not link against it. */\n' "$(basename "$l")" > "$l"
  n_ph=$((n_ph + 1))
done
[ "$n_ph" = 7 ] || { echo "device-deps: expected 7 libav link names, found $n_ph" >&2; exit 1; }
# Source trees shipped by -dev packages (googletest sources under /usr/src) are not needed: the static
# libraries are in /usr/lib.
rm -rf "$r/usr/src"
# A record of what is inside, for the device log.
printf '%s\n' "${pkgs[@]}" > "$dev/PACKAGES"
unpacked=$(du -sm "$r" | cut -f1)
tar -C "$dev" -cJf "$dev/root.tar.xz" root
[ "$keep_root" = 1 ] || rm -rf "$r"
size=$(du -sm --apparent-size "$dev" | cut -f1)
[ "$keep_root" = 1 ] && size=$(( $(du -sm --apparent-size "$dev/root.tar.xz" | cut -f1) ))
echo "device-deps: .device/root.tar.xz is $(du -h --apparent-size "$dev/root.tar.xz" | cut -f1) (${unpacked} MiB unpacked; debs downloaded: ${debs_size}; docs/man/locale/static archives pruned)"
tree_mib=$(cd "$here" && git ls-files -z | xargs -0 du -cb 2>/dev/null | tail -n1 | awk '{printf "%d", $1/1048576}')
echo "device-deps: tracked tree ${tree_mib} MiB + carried ${size} MiB = $((tree_mib + size)) MiB (limit 64 MiB per device run)"
if [ $((tree_mib + size)) -ge 64 ]; then
  echo "device-deps: WARNING: over the 64 MiB a device run carries" >&2
  exit 1
fi
