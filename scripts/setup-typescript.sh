#!/usr/bin/env bash
# make setup: the TypeScript SDK (sdk/nodejs, compiled to sdk/nodejs/bin) and the node_modules of
# examples/typescript, which tests/e2e/test_typescript_sdk.py runs through the real CLI.
#
# One npm install serves both: examples/typescript's, from its committed package-lock.json.
# sdk/nodejs/node_modules is a link to it, so tsc compiles the SDK against the same @pulumi/pulumi
# the program loads, and the SDK's compiled files (reached through the example's file: link)
# resolve that very copy at run time. Quick when done: npm runs only when the lock changed since
# the last install, with --prefer-offline (the machine's npm cache, ~/.npm, answers what it holds;
# a fresh checkout on a machine that installed once takes seconds), and tsc only when an SDK
# source changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$REPO_ROOT"

SDK=sdk/nodejs
EXAMPLE=examples/typescript
log() { printf 'setup-typescript: %s\n' "$*" >&2; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing nodejs and npm (Debian packages)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
# @pulumi/pulumi 3.276 (what the generated SDK needs) runs on Node.js 20 here; Debian 12's own
# nodejs is 18, on which it was never tried: say so instead of failing somewhere inside npm.
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
    log "Node.js $(node --version) is too old for the TypeScript SDK (needs 20 or later):" \
        "install a newer nodejs (e.g. NodeSource's) and run make setup again"
    exit 1
fi

# The example depends on the built SDK (file:../../sdk/nodejs/bin), the way Pulumi's providers
# publish theirs: the compiled files plus a copy of package.json. npm needs that package.json
# before the first build, to link the package.
mkdir -p "$SDK/bin"
cmp -s "$SDK/package.json" "$SDK/bin/package.json" || cp "$SDK/package.json" "$SDK/bin/package.json"

stamp="$EXAMPLE/node_modules/.pulumi-tdx-lock"
want="$(sha256sum "$EXAMPLE/package-lock.json" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci in $EXAMPLE"
    (cd "$EXAMPLE" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
fi

if [ "$(readlink "$SDK/node_modules" 2>/dev/null || true)" != "../../$EXAMPLE/node_modules" ]; then
    rm -rf "$SDK/node_modules"
    ln -s "../../$EXAMPLE/node_modules" "$SDK/node_modules"
fi

built="$SDK/bin/.pulumi-tdx-sources"
sources="$(find "$SDK" \( -name node_modules -o -name bin \) -prune -o -type f -print \
    | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$built" 2>/dev/null)" != "$sources" ]; then
    log "tsc: $SDK -> $SDK/bin"
    "$EXAMPLE/node_modules/.bin/tsc" -p "$SDK"
    echo "$sources" >"$built"
fi
