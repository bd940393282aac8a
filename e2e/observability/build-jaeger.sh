#!/usr/bin/env bash
# Builds Jaeger (github.com/jaegertracing/jaeger/cmd/jaeger: one binary that receives spans over
# OTLP gRPC/HTTP and Zipkin and answers queries over HTTP) from the Go module proxy, through our
# own module in ./jaeger (go.mod `tool` line + go.sum pin every dependency), into a cache
# directory, once. Idempotent: when the binary exists and its recorded module version matches,
# it only prints the path.
#
#   e2e/observability/build-jaeger.sh           # last line of stdout: the jaeger binary
#   WEFT_JAEGER_CACHE=/some/dir e2e/observability/build-jaeger.sh
#
# Needs Go >= 1.25 and the Go module proxy on the first run (measured here: 43 min wall on a
# 2-core machine at load ~25, 7.7 min user CPU; ~85 MB binary).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
version="$(sed -n 's/^\tgithub.com\/jaegertracing\/jaeger \(v[0-9.]*\).*$/\1/p' "$here/jaeger/go.mod" | head -1)"
[ -n "$version" ] || { echo "build-jaeger.sh: no 'github.com/jaegertracing/jaeger vX.Y.Z' requirement in $here/jaeger/go.mod" >&2; exit 1; }
cache="${WEFT_JAEGER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft/jaeger/$version}"
bin="$cache/bin/jaeger"

log() { printf '[jaeger-build %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

mkdir -p "$cache"
exec 9>"$cache/.build.lock"
flock 9

if [ -x "$bin" ] && [ "$(cat "$cache/version" 2>/dev/null)" = "$version" ]; then
  log "Jaeger $version present: $bin"
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build-jaeger.sh: Go is not installed (needed to build Jaeger $version)" >&2; exit 1; }
start=$(date +%s)
src="$cache/src"
rm -rf "$src" "$cache/bin.tmp"
mkdir -p "$src" "$cache/bin.tmp"
cp "$here/jaeger/go.mod" "$here/jaeger/go.sum" "$src/"
cd "$src"
log "go build github.com/jaegertracing/jaeger/cmd/jaeger $version (CGO_ENABLED=0; modules from the Go module proxy)"
CGO_ENABLED=0 go build -mod=mod -trimpath -ldflags "-s -w" -o "$cache/bin.tmp/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
"$cache/bin.tmp/jaeger" --help >/dev/null 2>&1 || { echo "build-jaeger.sh: the built binary does not run" >&2; exit 1; }
rm -rf "$cache/bin"
mv "$cache/bin.tmp" "$cache/bin"
echo "$version" > "$cache/version"
elapsed=$(( $(date +%s) - start ))
echo "$elapsed" > "$cache/build-seconds"
log "built Jaeger $version in $elapsed s: $bin"
echo "$bin"
