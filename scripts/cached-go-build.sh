#!/usr/bin/env bash
# Builds a Go program the tests and the demo use, from the Go module proxy, into a cache directory,
# once: the one place for every tool Weft builds with Go (a recipe per tool below). Idempotent: when
# the cached binaries are there and pass the recipe's check, it only prints their directory.
#
#   scripts/cached-go-build.sh TOOL            # last line of stdout: the directory holding TOOL's binaries
#   scripts/cached-go-build.sh --version TOOL  # the version a build of TOOL is for (nothing is built)
#   scripts/cached-go-build.sh --dir TOOL      # the cache's binary directory (nothing is built)
#   scripts/cached-go-build.sh --list          # the tools, one a line
#
# Cache: ${WEFT_<TOOL>_CACHE:-${XDG_CACHE_HOME:-~/.cache}/weft/<tool>/<version>}/bin, plus Go's own
# module and build caches. One build at a time per cache directory (flock), so tests and CI may call
# it concurrently. Each build records its wall time in <cache>/build-seconds and its version in
# <cache>/version. Needs Go (>= 1.24; Jaeger >= 1.25) and the Go module proxy on the first run.
#
# Adding a tool: write a recipe_<tool> function setting
#   version     the version built (the cache directory is named after it)
#   cache_env   the environment variable that moves the cache directory
#   binaries    the binary names the build leaves in bin/
#   packages    what `go build` builds (with `module`), or `go install` installs (PKG@VERSION)
#   module      optional: a directory of ours with go.mod (+ go.sum, tools.go) pinning the dependencies;
#               it is copied to <cache>/src and built there with -mod=mod
#   tidy        optional: 1 runs `go mod tidy` in that copy first (when go.sum is not complete)
#   ldflags     optional: extra -ldflags (always "-s -w" first)
# and optionally a verify_<tool> function (run with $bin set) that succeeds only when the binaries in
# $bin are the wanted version; without it the check is "every binary runs `--help` and <cache>/version
# holds $version".
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
log() { printf '[go-build %s %s] %s\n' "${tool:-}" "$(date -u +%H:%M:%S)" "$*" >&2; }
die() { echo "cached-go-build.sh${tool:+ $tool}: $*" >&2; exit 1; }

# Whole outputs first: `cmd | grep -q` fails under pipefail when grep exits before cmd is done.
output_has() { local out; out="$("${@:2}" 2>&1)" || return 1; grep -qF -- "$1" <<<"$out"; }

# --- recipes ---------------------------------------------------------------------------------------

# kube-apiserver, kube-controller-manager and kubectl for the Kubernetes e2e fixture, from
# k8s.io/kubernetes through our module in e2e/kubernetes/go (one replace per staging module).
recipe_kubernetes() {
  module="$repo/e2e/kubernetes/go"
  version="$(sed -n 's/^require k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$module/go.mod")"
  [ -n "$version" ] || die "no 'require k8s.io/kubernetes vX.Y.Z' line in $module/go.mod"
  cache_env=WEFT_K8S_CACHE
  binaries=(kube-apiserver kube-controller-manager kubectl)
  packages=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kubectl)
  tidy=1
  local minor="${version#v1.}" pkg
  minor="${minor%%.*}"
  ldflags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
}
verify_kubernetes() {
  [ "$("$bin/kube-apiserver" --version 2>/dev/null)" = "Kubernetes $version" ] &&
    [ "$("$bin/kube-controller-manager" --version 2>/dev/null)" = "Kubernetes $version" ] &&
    output_has "Client Version: $version" "$bin/kubectl" version --client
}

# Prometheus for e2e/observability and the demo. The web UI's assets are not embedded (no
# `builtinassets` tag): the HTTP API, scraping and rules work; the React UI pages do not.
recipe_prometheus() {
  version="${WEFT_PROMETHEUS_VERSION:-v0.316.0}"
  cache_env=WEFT_PROMETHEUS_CACHE
  binaries=(prometheus)
  packages=("github.com/prometheus/prometheus/cmd/prometheus@$version")
  ldflags="-X github.com/prometheus/common/version.Version=$version -X github.com/prometheus/common/version.Branch=module-proxy"
}
verify_prometheus() { output_has "version $version" "$bin/prometheus" --version; }

# Jaeger v2 (one binary: OTLP gRPC/HTTP and Zipkin receivers, HTTP query API) for traces in the
# e2e tests and the demo, pinned by our module in e2e/observability/jaeger (go.mod `tool` line + go.sum).
recipe_jaeger() {
  module="$repo/e2e/observability/jaeger"
  version="$(sed -n 's/^\tgithub.com\/jaegertracing\/jaeger \(v[0-9.]*\).*$/\1/p' "$module/go.mod" | sed -n 1p)"
  [ -n "$version" ] || die "no 'github.com/jaegertracing/jaeger vX.Y.Z' requirement in $module/go.mod"
  cache_env=WEFT_JAEGER_CACHE
  binaries=(jaeger)
  packages=(github.com/jaegertracing/jaeger/cmd/jaeger)
}

# helm for the chart checks (charts/weft: lint, template goldens, installs into the fixture).
# Without the -X, `helm version` reports the module's placeholder instead of the release.
recipe_helm() {
  version="${WEFT_HELM_VERSION:-v3.22.0}"
  cache_env=WEFT_HELM_CACHE
  binaries=(helm)
  packages=("helm.sh/helm/v3/cmd/helm@$version")
  ldflags="-X helm.sh/helm/v3/internal/version.version=$version"
}
verify_helm() { output_has "$version" "$bin/helm" version --short; }

# actionlint for the kind workflow (.github/workflows/kind.yaml).
recipe_actionlint() {
  version="${WEFT_ACTIONLINT_VERSION:-v1.7.12}"
  cache_env=WEFT_ACTIONLINT_CACHE
  binaries=(actionlint)
  packages=("github.com/rhysd/actionlint/cmd/actionlint@$version")
  ldflags="-X github.com/rhysd/actionlint.version=$version"
}
verify_actionlint() { output_has "$version" "$bin/actionlint" -version; }

# kind for the GitHub Actions workflow that runs e2e/kind/run.sh (not run here: no Docker engine).
recipe_kind() {
  version="${WEFT_KIND_VERSION:-v0.33.0}"
  cache_env=WEFT_KIND_CACHE
  binaries=(kind)
  packages=("sigs.k8s.io/kind@$version")
}
verify_kind() { output_has "kind $version" "$bin/kind" version; }

# istiod (Istio's pilot-discovery) for the side-by-side bench only (bench/istiod/); NOT in .ci/run:
# ~9-30 min and ~2.8 GB to build, and no test needs it. Istio is on the Go proxy only as pseudo-versions.
# Its CRDs come from the module istio.io/api at the version istio's go.mod requires
# (`go mod download -json istio.io/api@<ver>`; bench/istiod/istiod.ts finds them).
recipe_istiod() {
  version="${WEFT_ISTIOD_VERSION:-v0.0.0-20260827124520-eed52ebb66ad}"
  cache_env=WEFT_ISTIOD_CACHE
  binaries=(pilot-discovery)
  packages=("istio.io/istio/pilot/cmd/pilot-discovery@$version")
}

# --- the build -------------------------------------------------------------------------------------

tools() { declare -F | sed -n 's/^declare -f recipe_//p'; }

load() {
  tool="$1"
  declare -F "recipe_$tool" >/dev/null || die "unknown tool (known: $(tools | tr '\n' ' '))"
  version="" module="" tidy="" ldflags="" cache_env="" binaries=() packages=()
  "recipe_$tool"
  local override="${!cache_env:-}"
  cache="${override:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/$tool/$version}"
  bin="$cache/bin"
}

built() {
  local b
  for b in "${binaries[@]}"; do [ -x "$bin/$b" ] || return 1; done
  if declare -F "verify_$tool" >/dev/null; then "verify_$tool"; return; fi
  [ "$(cat "$cache/version" 2>/dev/null)" = "$version" ] || return 1
  for b in "${binaries[@]}"; do "$bin/$b" --help >/dev/null 2>&1 || return 1; done
}

build() {
  command -v go >/dev/null || die "Go is not installed (needed to build $tool $version)"
  local start; start=$(date +%s)
  rm -rf "$bin.tmp"
  mkdir -p "$bin.tmp"
  if [ -n "$module" ]; then
    local src="$cache/src" f
    rm -rf "$src"
    mkdir -p "$src"
    for f in go.mod go.sum tools.go; do [ -f "$module/$f" ] && cp "$module/$f" "$src/"; done
    cd "$src"
    if [ -n "$tidy" ]; then
      log "go mod tidy (downloads $tool $version and its dependencies)"
      GOFLAGS=-mod=mod go mod tidy
      log "modules ready after $(( $(date +%s) - start )) s"
    fi
    log "go build ${packages[*]} (CGO_ENABLED=0)"
    CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w $ldflags" -o "$bin.tmp/" "${packages[@]}"
  else
    log "go install ${packages[*]} (CGO_ENABLED=0)"
    CGO_ENABLED=0 GOBIN="$bin.tmp" go install -trimpath -ldflags "-s -w $ldflags" "${packages[@]}"
  fi
  echo "$version" > "$cache/version"
  rm -rf "$bin"
  mv "$bin.tmp" "$bin"
  built || die "the binaries built in $bin do not pass the check for $version"
  local elapsed=$(( $(date +%s) - start ))
  echo "$elapsed" > "$cache/build-seconds"
  log "built $tool $version in $elapsed s into $bin"
}

case "${1:-}" in
  --list) tools; exit 0 ;;
  --version) [ -n "${2:-}" ] || die "usage: $0 --version TOOL"; load "$2"; echo "$version"; exit 0 ;;
  --dir) [ -n "${2:-}" ] || die "usage: $0 --dir TOOL"; load "$2"; echo "$bin"; exit 0 ;;
  ""|-h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; echo "tools: $(tools | tr '\n' ' ')"; [ -n "${1:-}" ]; exit ;;
esac
load "$1"
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9
if built; then
  log "$tool $version present in $bin"
else
  build
fi
echo "$bin"
