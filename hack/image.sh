#!/usr/bin/env bash
# Builds a container image tarball without a Docker engine (hack/tools/image, go-containerregistry):
#   hack/image.sh manager [OUT]  the DES image: /manager (static), CA certificates, user 65532
#                                (the Dockerfile's contract); default OUT bin/manager-image.tar
#   hack/image.sh pause [OUT]    the test world's pod sandbox image; default OUT bin/pause-image.tar
# IMAGE overrides the tag (des.datavision.io/manager:dev, des.datavision.io/pause:dev); VERSION is
# stamped into the manager (internal/version, default dev); GO_BUILD_TAGS
# are passed to go build (the e2e's image is built with "chaos": internal/packer/chaos_clock.go).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
what=${1:?usage: hack/image.sh manager|pause [OUT]}
build=$root/bin/image-build
mkdir -p "$build"
case "$what" in
manager)
  out=${2:-$root/bin/manager-image.tar}
  tag=${IMAGE:-des.datavision.io/manager:dev}
  ca=/etc/ssl/certs/ca-certificates.crt
  [ -s "$ca" ] || { echo "image: $ca is missing: run 'make test-deps' (apt-get install ca-certificates)" >&2; exit 1; }
  (cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -tags "${GO_BUILD_TAGS:-}" -ldflags "-s -w -X github.com/datavision/des/internal/version.Version=${VERSION:-dev}" -o "$build/manager" ./cmd/manager)
  files=(--file "$build/manager=/manager:0755" --file "$ca=/etc/ssl/certs/ca-certificates.crt:0644")
  entry=/manager
  ;;
pause)
  out=${2:-$root/bin/pause-image.tar}
  tag=${IMAGE:-des.datavision.io/pause:dev}
  (cd "$root" && CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -ldflags "-s -w" -o "$build/pause" ./hack/pause)
  files=(--file "$build/pause=/pause:0755")
  entry=/pause
  ;;
*) echo "usage: hack/image.sh manager|pause [OUT]" >&2; exit 2 ;;
esac
(cd "$root/hack/tools/image" && go build -o "$build/image-tool" .)
"$build/image-tool" --tag "$tag" --out "$out" --entrypoint "$entry" --user 65532:65532 "${files[@]}"
