#!/usr/bin/env bash
# Builds one of the Go command-line tools the chart and kind checks use, from the Go module proxy,
# into a cache directory, once. Idempotent: when the binary exists and reports the expected version
# it only prints its path.
#
#   e2e/helm/build-go-tool.sh helm         # helm.sh/helm/v3/cmd/helm@v3.22.0
#   e2e/helm/build-go-tool.sh actionlint   # github.com/rhysd/actionlint/cmd/actionlint@v1.7.12
#   WEFT_GO_TOOLS_CACHE=/some/dir e2e/helm/build-go-tool.sh helm
#
# Last line of stdout: the binary's path. Needs Go >= 1.24 and the Go module proxy on the first run
# (helm: about 2 min of CPU; actionlint: under a minute).
set -euo pipefail

tool="${1:-}"
case "$tool" in
  helm)
    version="${WEFT_HELM_VERSION:-v3.22.0}"
    package="helm.sh/helm/v3/cmd/helm"
    # Without it `helm version` says the module's placeholder instead of the release.
    ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=$version"
    version_cmd=(version --short)
    ;;
  actionlint)
    version="${WEFT_ACTIONLINT_VERSION:-v1.7.12}"
    package="github.com/rhysd/actionlint/cmd/actionlint"
    ldflags="-s -w -X github.com/rhysd/actionlint.version=$version"
    version_cmd=(-version)
    ;;
  *)
    echo "build-go-tool.sh: usage: build-go-tool.sh helm|actionlint (got '${tool}')" >&2
    exit 2
    ;;
esac

cache="${WEFT_GO_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}/$tool/$version"
bin="$cache/bin/$tool"

log() { printf '[%s-build %s] %s\n' "$tool" "$(date -u +%H:%M:%S)" "$*" >&2; }

built() {
  [ -x "$bin" ] || return 1
  local out
  out="$("$bin" "${version_cmd[@]}" 2>&1)" || return 1
  grep -q -- "$version" <<<"$out"
}

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

if built; then
  log "$tool $version present: $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-go-tool.sh: Go is not installed (need Go >= 1.24 to build $tool $version)" >&2; exit 1; }
start=$(date +%s)
rm -rf "$cache/bin.tmp"
mkdir -p "$cache/bin.tmp"
log "go install $package@$version (CGO_ENABLED=0)"
CGO_ENABLED=0 GOBIN="$cache/bin.tmp" go install -trimpath -ldflags "$ldflags" "$package@$version"
rm -rf "$cache/bin"
mv "$cache/bin.tmp" "$cache/bin"
if ! built; then
  echo "build-go-tool.sh: $bin does not report version $version:" >&2
  "$bin" "${version_cmd[@]}" >&2 || true
  exit 1
fi
elapsed=$(( $(date +%s) - start ))
echo "$elapsed" > "$cache/build-seconds"
log "built $tool $version in $elapsed s: $bin"
echo "$bin"
