#!/usr/bin/env bash
# Runs every fuzz target of the module for a while each (default 15s): `hack/fuzz.sh 10m` for a hunt.
# A crasher is written under the package's testdata/fuzz/ and fails the run.
set -euo pipefail
fuzztime=${1:-15s}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
found=0
while read -r pkg dir; do
  for target in $(grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    found=1
    echo "[fuzz] $pkg $target for $fuzztime" >&2
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$pkg"
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
[ "$found" = 1 ] || echo "[fuzz] no fuzz targets found" >&2
