#!/usr/bin/env bash
# Builds the binaries the tests start, from Go modules only (nothing can be downloaded here):
#   bin/k8s/<version>/{kube-apiserver,etcd,kube-controller-manager,kubectl}  (KUBEBUILDER_ASSETS)
#   bin/k8s/<version>/{kubelet,kube-scheduler}                            (the real node)
#   bin/versitygw, bin/controller-gen, bin/golangci-lint, bin/pause-image.tar (the real node's pod
#   sandbox image)
#   bin/promtool, bin/promql-names            (hack/tools/prometheus: config/prometheus's rule checks)
#   bin/monitoring-crds/<version>/*.yaml      (the prometheus-operator's CRDs config/prometheus is checked against)
# Skips whatever is already built, so a second run takes seconds.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
K8S_VERSION=${K8S_VERSION:-v1.37.2}
VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
CONTROLLER_TOOLS_VERSION=${CONTROLLER_TOOLS_VERSION:-v0.23.0}
GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
# The newest release of the operator's root module (which ships the CRDs as YAML) the module proxy serves.
PROMETHEUS_OPERATOR_VERSION=${PROMETHEUS_OPERATOR_VERSION:-v0.85.0}
k8s_dir="$root/bin/k8s/$K8S_VERSION"
mkdir -p "$k8s_dir" "$root/bin"

log() { printf '[test-assets] %s\n' "$*" >&2; }

k8s_bins="kube-apiserver etcd kube-controller-manager kubectl kubelet kube-scheduler"

build_control_plane() {
  local missing=0
  for b in $k8s_bins; do
    [ -x "$k8s_dir/$b" ] || missing=1
  done
  if [ "$missing" = 0 ]; then
    log "control plane $K8S_VERSION already built in $k8s_dir"
    return
  fi
  log "building $k8s_bins $K8S_VERSION (several minutes cold)"
  local start=$SECONDS
  local ver=${K8S_VERSION#v}
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=${ver%%.*}"
  ldflags+=" -X k8s.io/component-base/version.gitMinor=$(echo "$ver" | cut -d. -f2)"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  local tmp
  tmp=$(mktemp -d "$k8s_dir/.build.XXXXXX")
  (
    cd "$root/hack/tools/k8s"
    go build -ldflags "$ldflags" -o "$tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kubectl \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-scheduler \
      go.etcd.io/etcd/server/v3
  )
  mv "$tmp/v3" "$tmp/etcd" 2>/dev/null || mv "$tmp/server" "$tmp/etcd"
  for b in $k8s_bins; do
    mv "$tmp/$b" "$k8s_dir/$b"
  done
  rmdir "$tmp"
  log "control plane built in $((SECONDS - start))s"
}

go_install() { # name module@version
  local name=$1 pkg=$2
  if [ -x "$root/bin/$name" ]; then
    log "$name already installed"
    return
  fi
  log "installing $pkg"
  GOBIN="$root/bin" go install "$pkg"
}

build_control_plane
go_install versitygw "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION"
go_install controller-gen "sigs.k8s.io/controller-tools/cmd/controller-gen@$CONTROLLER_TOOLS_VERSION"
# The linter is rebuilt when the pin moves: a stale one would judge the code by other rules.
if [ -x "$root/bin/golangci-lint" ] && [ "$("$root/bin/golangci-lint" version --short 2>/dev/null)" != "${GOLANGCI_LINT_VERSION#v}" ]; then
  rm -f "$root/bin/golangci-lint"
fi
go_install golangci-lint "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$GOLANGCI_LINT_VERSION"
# promtool and promql-names at the versions hack/tools/prometheus/go.mod pins; rebuilt when it changes.
build_prometheus_tools() {
  local stamp="$root/bin/.prometheus-tools" want
  want=$(sha256sum "$root/hack/tools/prometheus/go.mod" "$root/hack/tools/prometheus/go.sum" \
    "$root/hack/tools/prometheus/promql-names/main.go" | sha256sum | cut -d' ' -f1)
  if [ -x "$root/bin/promtool" ] && [ -x "$root/bin/promql-names" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    log "promtool and promql-names already built"
    return
  fi
  log "building promtool and promql-names (hack/tools/prometheus; a few minutes cold)"
  (
    cd "$root/hack/tools/prometheus"
    GOWORK=off go build -o "$root/bin/" github.com/prometheus/prometheus/cmd/promtool ./promql-names
  )
  echo "$want" >"$stamp"
}

# The ServiceMonitor, PodMonitor and PrometheusRule CRDs, as the operator's release ships them.
copy_monitoring_crds() {
  local dest="$root/bin/monitoring-crds/$PROMETHEUS_OPERATOR_VERSION" dir tmp
  if [ -s "$dest/monitoring.coreos.com_prometheusrules.yaml" ]; then
    log "prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION already in $dest"
    return
  fi
  log "fetching the prometheus-operator CRDs $PROMETHEUS_OPERATOR_VERSION"
  tmp=$(mktemp -d)
  dir=$(cd "$tmp" && GOFLAGS=-mod=mod go mod download -json \
    "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  rmdir "$tmp"
  [ -n "$dir" ] || { log "go mod download gave no directory"; return 1; }
  mkdir -p "$dest"
  for kind in servicemonitors podmonitors prometheusrules; do
    install -m 0644 "$dir/example/prometheus-operator-crd/monitoring.coreos.com_$kind.yaml" "$dest/"
  done
}

build_prometheus_tools
copy_monitoring_crds
if [ -s "$root/bin/pause-image.tar" ]; then
  log "pause image already built"
else
  "$root/hack/image.sh" pause >&2
fi
log "assets ready: KUBEBUILDER_ASSETS=$k8s_dir"
