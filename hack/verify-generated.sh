#!/usr/bin/env bash
# Regenerates deepcopy code and manifests in a scratch copy of the tree and fails if they differ from
# the files here: generated files must be regenerated (make generate manifests) and committed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git ls-files --cached --others --exclude-standard -z | xargs -0 tar -cf - 2>/dev/null | tar -xf - -C "$tmp"
make -s -C "$tmp" generate manifests CONTROLLER_GEN="${CONTROLLER_GEN:-$root/bin/controller-gen}" >/dev/null
status=0
for d in api config; do
  if ! diff -ru "$d" "$tmp/$d"; then status=1; fi
done
if [ "$status" != 0 ]; then
  echo "verify-generated: generated files are stale; run 'make generate manifests' and commit" >&2
fi
exit "$status"
