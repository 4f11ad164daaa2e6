#!/usr/bin/env bash
# Installs the Debian packages the tests need, only when they are missing: PostgreSQL (its server
# binaries are started privately by internal/testworld; the system instance is never used).
set -euo pipefail
have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && id postgres >/dev/null 2>&1; }
if have_postgres; then
  echo "[test-deps] postgresql present" >&2
  exit 0
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
echo "[test-deps] installing postgresql from Debian" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends postgresql
# The package starts a system cluster we do not use; stop it so it holds no port or memory.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h | while read -r ver name _; do $sudo pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
fi
have_postgres
