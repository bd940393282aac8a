#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl from k8s.io/kubernetes on the Go module
# proxy (through our own module in ./go) into a cache directory, once. Idempotent: when the three
# binaries exist and report the expected version it only prints the directory.
#
#   e2e/kubernetes/build.sh            # builds if needed, last line of stdout: the binary directory
#   WEFT_K8S_CACHE=/some/dir e2e/kubernetes/build.sh
#
# Needs Go >= 1.24 and network access to the Go module proxy on the first run (~3 GB of modules,
# ~10 min of CPU on 2 cores). Everything it writes is under the cache directory and Go's caches.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/go/go.mod")"
[ -n "$version" ] || { echo "build.sh: no 'require k8s.io/kubernetes vX.Y.Z' line in $here/go/go.mod" >&2; exit 1; }
cache="${WEFT_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/kubernetes/$version}"
bin="$cache/bin"
commands=(kube-apiserver kube-controller-manager kubectl)

log() { printf '[k8s-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# True when every binary exists and says it is $version.
built() {
  [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kube-controller-manager" ] && [ -x "$bin/kubectl" ] || return 1
  # Whole outputs first: `cmd | grep -q` fails under pipefail when grep exits before cmd is done.
  local out
  out="$("$bin/kube-apiserver" --version 2>/dev/null)" && [ "$out" = "Kubernetes $version" ] || return 1
  out="$("$bin/kube-controller-manager" --version 2>/dev/null)" && [ "$out" = "Kubernetes $version" ] || return 1
  out="$("$bin/kubectl" version --client 2>/dev/null)" && grep -qx "Client Version: $version" <<<"$out" || return 1
}

mkdir -p "$cache"
# One build at a time per cache directory (tests and CI may call this concurrently).
exec 9>"$cache/.build.lock"
flock 9

if built; then
  log "Kubernetes $version binaries present in $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is not installed (need Go >= 1.24 to build Kubernetes $version)" >&2; exit 1; }
start=$(date +%s)
src="$cache/src"
rm -rf "$src" "$bin.tmp"
mkdir -p "$src" "$bin.tmp"
cp "$here/go/go.mod" "$here/go/tools.go" "$src/"
[ -f "$here/go/go.sum" ] && cp "$here/go/go.sum" "$src/"
cd "$src"

log "go mod tidy (downloads k8s.io/kubernetes $version and its dependencies)"
GOFLAGS=-mod=mod go mod tidy
log "modules ready after $(( $(date +%s) - start )) s"

minor="${version#v1.}"; minor="${minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
log "go build ${commands[*]} (CGO_ENABLED=0)"
CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl
rm -rf "$bin"
mv "$bin.tmp" "$bin"
if ! built; then
  echo "build.sh: built binaries in $bin do not report Kubernetes $version:" >&2
  "$bin/kube-apiserver" --version >&2 || true
  exit 1
fi
elapsed=$(( $(date +%s) - start ))
echo "$elapsed" > "$cache/build-seconds"
log "built Kubernetes $version in $elapsed s into $bin"
echo "$bin"
