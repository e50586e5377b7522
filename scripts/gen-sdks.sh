#!/usr/bin/env bash
# make sdks: the Go and Node.js SDKs of the native provider's package (sdk/go/tdx, sdk/nodejs),
# written by Pulumi's own code generators (pkg/v3/codegen, through scripts/sdkgen) from the
# schema that `make docs` generates from the specs. Usage: gen-sdks.sh [OUT_DIR] (default sdk/;
# the test of "the SDKs are current" writes elsewhere and compares).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$REPO_ROOT/sdk}"
SCHEMA="$REPO_ROOT/provider/tdx_provider/native/schema.json"
SRC="$REPO_ROOT/scripts/sdkgen"
HASH="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-12)"
TOOL_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tdx/sdkgen-$HASH"

log() { printf 'gen-sdks: %s\n' "$*" >&2; }

if [ ! -x "$TOOL_DIR/sdkgen" ]; then
    go="$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)"
    [ -x "$go" ] || { log "go not found (need Go >= 1.26)"; exit 1; }
    log "building scripts/sdkgen (Pulumi's code generators, once per machine: ~2 min)"
    mkdir -p "$TOOL_DIR"
    (cd "$SRC" && GOFLAGS=-mod=mod GOTOOLCHAIN=local "$go" build -trimpath \
        -o "$TOOL_DIR/sdkgen.$$" .)
    mv "$TOOL_DIR/sdkgen.$$" "$TOOL_DIR/sdkgen"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$TOOL_DIR/sdkgen" "$SCHEMA" go "$work/go"
"$TOOL_DIR/sdkgen" "$SCHEMA" nodejs "$work/nodejs"

# Go: the generated package under the hand-kept module (sdk/go/go.mod, go.sum)
mkdir -p "$OUT/go"
rm -rf "$OUT/go/tdx"
cp -r "$work/go/tdx" "$OUT/go/tdx"
# Node.js: every generated file; what is ours (node_modules, bin of a build) is not generated
mkdir -p "$OUT/nodejs"
find "$OUT/nodejs" -mindepth 1 -maxdepth 1 ! -name node_modules ! -name bin -exec rm -rf {} +
cp -r "$work/nodejs/." "$OUT/nodejs/"
log "wrote $OUT/go/tdx and $OUT/nodejs"
