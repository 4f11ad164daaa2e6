#!/usr/bin/env bash
# Runs every fuzz target of the module for a while each (default 15s): `hack/fuzz.sh 10m` for a hunt.
# A crasher is written under the package's testdata/fuzz/ and fails the run.
#
# Go 1.26's fuzz coordinator can end a duration-bound run with a bare "context deadline exceeded"
# and no input (golang/go#75804, fixed in Go 1.27): the -fuzztime deadline races its own workers'
# shutdown. Such a run is judged by what it left behind: a new input under testdata/fuzz/<target>/
# or any other failure text fails; a bare deadline with nothing written is reported, and the
# target's corpus is replayed as plain tests, which must pass.
set -euo pipefail
fuzztime=${1:-15s}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
found=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

corpus_files() { { find "$1/testdata/fuzz/$2" -type f 2>/dev/null || true; } | sort; }

fuzz_one() { # pkg dir target
  local pkg=$1 dir=$2 target=$3 before
  before=$(corpus_files "$dir" "$target")
  if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$pkg" 2>&1 | tee "$log"; then
    return 0
  fi
  if [ "$(corpus_files "$dir" "$target")" != "$before" ]; then
    echo "[fuzz] $target wrote a failing input under $dir/testdata/fuzz/$target" >&2
    return 1
  fi
  # The failure's only message must be the coordinator's deadline (the line after "--- FAIL").
  if [ "$(grep -A1 -- "^--- FAIL: $target " "$log" | tail -n1 | tr -d '[:space:]')" != "contextdeadlineexceeded" ]; then
    return 1
  fi
  echo "[fuzz] $target: bare 'context deadline exceeded', no input written (golang/go#75804); replaying its corpus" >&2
  go test -count=1 -run "^${target}\$" "$pkg"
}

while read -r pkg dir; do
  for target in $(grep -hoE '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //'); do
    found=1
    echo "[fuzz] $pkg $target for $fuzztime" >&2
    fuzz_one "$pkg" "$dir" "$target"
  done
done < <(go list -f '{{.ImportPath}} {{.Dir}}' ./...)
[ "$found" = 1 ] || echo "[fuzz] no fuzz targets found" >&2
