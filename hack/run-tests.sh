#!/usr/bin/env bash
# Runs the Go tests in their own process group and fails if any process they started survives them
# (envtest's etcd/kube-apiserver, PostgreSQL, versitygw): a test that leaks a server is a bug.
# Usage: hack/run-tests.sh [go test flags] [packages]   (default: ./...)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export KUBEBUILDER_ASSETS=${KUBEBUILDER_ASSETS:-$root/bin/k8s/v1.37.2}

args=("$@")
[ ${#args[@]} -eq 0 ] && args=(./...)

set -m # the background job gets a process group of its own
go test "${args[@]}" &
pgid=$!
trap 'kill -TERM -- -$pgid 2>/dev/null' INT TERM
wait "$pgid"
rc=$?
trap - INT TERM

sleep 0.5
leftover=$(ps -eo pid=,pgid=,args= | awk -v g="$pgid" '$2 == g')
if [ -n "$leftover" ]; then
  echo "run-tests: processes started by the tests are still running:" >&2
  echo "$leftover" >&2
  kill -KILL -- -"$pgid" 2>/dev/null
  [ "$rc" -eq 0 ] && rc=1
fi
exit "$rc"
