#!/usr/bin/env bash
# Builds Prometheus (github.com/prometheus/prometheus/cmd/prometheus) from the Go module proxy into a
# cache directory, once. Idempotent: when the binary exists and reports the expected version it only
# prints its path.
#
#   e2e/observability/build-prometheus.sh        # builds if needed; last line of stdout: the binary
#   WEFT_PROMETHEUS_CACHE=/some/dir e2e/observability/build-prometheus.sh
#
# Needs Go >= 1.24 and the Go module proxy on the first run. The web UI's assets are not embedded
# (no `builtinassets` tag): the HTTP API, scraping and rules work; the React UI pages do not.
set -euo pipefail

version="${WEFT_PROMETHEUS_VERSION:-v0.316.0}"
cache="${WEFT_PROMETHEUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/prometheus/$version}"
bin="$cache/bin/prometheus"

log() { printf '[prometheus-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

built() {
  [ -x "$bin" ] || return 1
  local out
  out="$("$bin" --version 2>&1)" || return 1
  grep -q "version $version" <<<"$out"
}

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

if built; then
  log "Prometheus $version present: $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-prometheus.sh: Go is not installed (need Go >= 1.24 to build Prometheus $version)" >&2; exit 1; }
start=$(date +%s)
rm -rf "$cache/bin.tmp"
mkdir -p "$cache/bin.tmp"
log "go install github.com/prometheus/prometheus/cmd/prometheus@$version (CGO_ENABLED=0)"
CGO_ENABLED=0 GOBIN="$cache/bin.tmp" go install -trimpath \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version -X github.com/prometheus/common/version.Branch=module-proxy" \
  "github.com/prometheus/prometheus/cmd/prometheus@$version"
rm -rf "$cache/bin"
mv "$cache/bin.tmp" "$cache/bin"
if ! built; then
  echo "build-prometheus.sh: $bin does not report version $version:" >&2
  "$bin" --version >&2 || true
  exit 1
fi
elapsed=$(( $(date +%s) - start ))
echo "$elapsed" > "$cache/build-seconds"
log "built Prometheus $version in $elapsed s: $bin"
echo "$bin"
