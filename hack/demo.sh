#!/usr/bin/env bash
# make demo / make demo-down: runs test/demo in the background, shows its progress until the demo is
# ready (or failed), and leaves the stack up for exploring until `make demo-down`.
#   hack/demo.sh up | down
#   hack/demo.sh kubectl ARGS...   kubectl against the demo's cluster
#   hack/demo.sh exec CMD ARGS...  a command in the demo's network namespace (the stack listens there)
#   hack/demo.sh shell             a shell there, with KUBECONFIG set
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DEMO_DIR:-$root/tmp/demo}
cmd=${1:-up}
mkdir -p "$dir"
pidfile=$dir/demo.pid
# The sandbox's first process (a child of the demo), whose network namespace the stack lives in.
sandboxfile=$dir/sandbox.pid

# start_time PID prints the start time of process PID (field 22 of /proc/PID/stat, in clock ticks
# since boot), which tells the demo's process from a later one that got its pid.
start_time() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # drop "pid (comm) ": comm may hold spaces and parentheses; field 3 comes first
  set -- $stat
  [ $# -ge 20 ] && [ "$1" != Z ] || return 1 # a zombie has exited already
  echo "${20}"
}

# demo_running succeeds if demo.pid ("PID START-TIME") names a live process that started at that
# time, and sets pid and start from it. A stale or mismatching file is removed.
demo_running() {
  pid= start=
  [ -f "$pidfile" ] || return 1
  read -r pid start < "$pidfile" || true
  if [ -n "$pid" ] && [ -n "$start" ] && kill -0 "$pid" 2>/dev/null && [ "$(start_time "$pid")" = "$start" ]; then
    return 0
  fi
  echo "removing stale $pidfile (pid ${pid:-none} is not the demo's process any more)" >&2
  rm -f "$pidfile"
  return 1
}

case "$cmd" in
up)
  if demo_running; then
    echo "demo already running (pid $pid); 'make demo-down' first" >&2; exit 1
  fi
  rm -rf "$dir"/*.log "$sandboxfile"
  cd "$root"
  DES_SANDBOX_PIDFILE=$sandboxfile setsid bin/demo --dir "$dir" ${DEMO_ARGS:-} > "$dir/demo.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid $(start_time "$pid" || true)" > "$pidfile"
  # Follow the log until the demo says it is ready or stops.
  tail -n +1 -f "$dir/demo.log" --pid "$pid" &
  tailer=$!
  while kill -0 "$pid" 2>/dev/null && ! grep -q '^DEMO READY' "$dir/demo.log"; do sleep 0.5; done
  sleep 0.3; kill "$tailer" 2>/dev/null || true
  if grep -q '^DEMO READY' "$dir/demo.log"; then exit 0; fi
  echo "demo failed; see $dir/demo.log" >&2; exit 1
  ;;
down)
  # Only the demo's own process: its stack (servers, pods) dies with it, as the children carry a
  # parent-death signal. SIGTERM lets it shut the stack down; SIGKILL after 20 s.
  if demo_running; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do [ "$(start_time "$pid")" = "$start" ] || break; sleep 0.2; done
    if [ "$(start_time "$pid")" = "$start" ]; then
      echo "demo (pid $pid) still running 20 s after SIGTERM: SIGKILL" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
    echo "demo stopped"
  else
    echo "demo not running"
  fi
  ;;
kubectl|exec|shell)
  demo_running || { echo "demo not running: 'make demo' first" >&2; exit 1; }
  read -r spid < "$sandboxfile" || true
  # The sandbox process must be the demo's child, not a later process that got the same pid.
  if [ -z "${spid:-}" ] || [ "$(awk '{print $4}' "/proc/$spid/stat" 2>/dev/null)" != "$pid" ]; then
    echo "the demo's sandbox process is not running" >&2; exit 1
  fi
  enter=(nsenter "--net=/proc/$spid/ns/net" --)
  export KUBECONFIG=$dir/kubeconfig
  # kubectl finds its plugins on PATH: `kubectl des` is bin/kubectl-des (make build).
  export PATH="$root/bin:$PATH"
  shift
  case "$cmd" in
  kubectl) exec "${enter[@]}" "$root/bin/k8s/v1.37.2/kubectl" "$@" ;;
  exec) exec "${enter[@]}" "$@" ;;
  shell) echo "in the demo's network namespace; KUBECONFIG=$KUBECONFIG; exit to leave" >&2
    exec "${enter[@]}" "${SHELL:-bash}" ;;
  esac
  ;;
*) echo "usage: $0 up|down|kubectl ARGS|exec CMD|shell" >&2; exit 2 ;;
esac
