#!/usr/bin/env bash
# Installs the Debian packages the tests need, only when they are missing:
#   postgresql                  its server binaries are started privately by test/testworld (the
#                               system instance is never used)
#   containerd, runc,           the real node's container runtime (test/testworld starts a private
#   containernetworking-plugins containerd; the system service is never used)
#   iproute2                    the node's sandbox network (ip)
#   ca-certificates             the CA bundle that goes into the manager image
#   redis-server                started privately by test/testworld for the reader's shared index
#                               tier (the system instance is never used)
#   mariadb-server              mariadbd and mariadb-install-db, started privately by test/testworld
#                               for the MariaDB catalog (the system instance is never used)
#   tar                         GNU tar, the baseline of cmd/des's BenchmarkPackVsTar and the
#                               reference of its path test (TestPackPathsLikeTar)
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

have_postgres() { compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null && id postgres >/dev/null 2>&1; }
# mariadbd lives in /usr/sbin, which a non-root PATH often lacks.
have_mariadb() { command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ]; }
missing=()
have_postgres || missing+=(postgresql)
have_mariadb || missing+=(mariadb-server)
for pair in redis-server:redis-server containerd:containerd runc:runc ctr:containerd ip:iproute2 tar:tar; do
  command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
[ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
[ -s /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
if [ ${#missing[@]} -eq 0 ]; then
  echo "[test-deps] postgresql, redis-server, mariadb-server, containerd, runc, CNI plugins, iproute2, ca-certificates, tar present" >&2
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
echo "[test-deps] installing from Debian: ${missing[*]}" >&2
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
# The packages start system services we do not use (where an init system runs them); stop them so
# they hold no port, socket or memory.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters -h | while read -r ver name _; do $sudo pg_ctlcluster "$ver" "$name" stop 2>/dev/null || true; done
fi
for svc in containerd redis-server mariadb; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl disable --now "$svc" || true
  fi
done
# Without systemd the packages' init scripts may have started one on 6379 and one on 3306.
if command -v service >/dev/null && [ -x /etc/init.d/redis-server ]; then
  $sudo service redis-server stop >/dev/null 2>&1 || true
fi
if command -v service >/dev/null && [ -x /etc/init.d/mariadb ]; then
  $sudo service mariadb stop >/dev/null 2>&1 || true
fi
have_postgres && have_mariadb
