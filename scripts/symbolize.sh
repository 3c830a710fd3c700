#!/usr/bin/env bash
# Reads a backtrace as glibc's backtrace_symbols prints it ("FILE(+0xOFFSET)[0xADDR]" or
# "FILE(symbol+0xOFFSET)[0xADDR]", e.g. from a crashing test: tests/test_main.cpp) on stdin and writes each
# frame with its function (and source line, where the binary has debug info) via addr2line.
# Used by scripts/device-check.sh for the tests that crash on the GPU machine; works anywhere binutils is.
# usage: scripts/symbolize.sh < crash-output
set -uo pipefail
command -v addr2line >/dev/null || { echo "symbolize: addr2line (binutils) not found" >&2; cat; exit 0; }
while IFS= read -r line; do
  if [[ "$line" =~ ^([^\(\ ]+)\(\+(0x[0-9a-f]+)\)\[0x[0-9a-f]+\]$ ]]; then
    file=${BASH_REMATCH[1]} off=${BASH_REMATCH[2]}
    # The return address points after the call: look up the byte before it.
    where=$(addr2line -f -C -i -e "$file" "$(printf '0x%x' $(( off - 1 )))" 2>/dev/null | paste -sd ' ' -)
    echo "$line  →  ${where:-?}"
  else
    echo "$line"
  fi
done
