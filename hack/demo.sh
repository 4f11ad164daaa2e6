#!/usr/bin/env bash
# make demo / make demo-down: runs hack/demo in the background, shows its progress until the demo is
# ready (or failed), and leaves the stack up for exploring until `make demo-down`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${DEMO_DIR:-$root/tmp/demo}
cmd=${1:-up}
mkdir -p "$dir"
case "$cmd" in
up)
  if [ -f "$dir/demo.pid" ] && kill -0 "$(cat "$dir/demo.pid")" 2>/dev/null; then
    echo "demo already running (pid $(cat "$dir/demo.pid")); 'make demo-down' first" >&2; exit 1
  fi
  rm -rf "$dir"/pods "$dir"/*.log
  cd "$root"
  setsid bin/demo --dir "$dir" --manager bin/manager ${DEMO_ARGS:-} > "$dir/demo.log" 2>&1 < /dev/null &
  echo $! > "$dir/demo.pid"
  # Follow the log until the demo says it is ready or stops.
  tail -n +1 -f "$dir/demo.log" --pid "$(cat "$dir/demo.pid")" &
  tailer=$!
  while kill -0 "$(cat "$dir/demo.pid")" 2>/dev/null && ! grep -q '^DEMO READY' "$dir/demo.log"; do sleep 0.5; done
  sleep 0.3; kill "$tailer" 2>/dev/null || true
  if grep -q '^DEMO READY' "$dir/demo.log"; then exit 0; fi
  echo "demo failed; see $dir/demo.log" >&2; exit 1
  ;;
down)
  if [ -f "$dir/demo.pid" ]; then
    pid=$(cat "$dir/demo.pid")
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL -- -"$pid" 2>/dev/null || true
    rm -f "$dir/demo.pid"
  fi
  echo "demo stopped"
  ;;
*) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
