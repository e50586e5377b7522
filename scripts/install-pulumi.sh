#!/usr/bin/env bash
# Put a working Pulumi CLI and its Python plugins into a bin dir (default: .venv/bin).
#
# Usage: scripts/install-pulumi.sh [BIN_DIR]
#
# Result in BIN_DIR: pulumi (a wrapper that resets SIGINT, see wrap_cli), pulumi-language-python,
# pulumi-language-python-exec,
# pulumi-resource-pulumi-python, pulumi-language-yaml (runtime: yaml programs),
# pulumi-language-nodejs (runtime: nodejs programs, the TypeScript SDK in sdk/nodejs),
# pulumi-language-go (runtime: go programs, the Go SDK in sdk/go).
#
# 1. If a pulumi is already on PATH (and it is not ours), link the plugins beside it.
# 2. Otherwise build from the Go module proxy (the only registry we can reach for Pulumi),
#    once per machine, into ${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tdx/pulumi-<version>/,
#    and link BIN_DIR to that cache. A second run only checks links: no network, no build.
#
# Idempotent: links that are already right are left alone.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN_DIR="${1:-$REPO_ROOT/.venv/bin}"

PULUMI_VERSION="${PULUMI_VERSION:-v3.274.1}"
# The Python language host. Since v3.69 it is a nested, untagged module
# (github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), pinned by the
# pseudo-version of a release commit. Our Go proxy serves no version of that module (403 for
# every release tried, see docs/development.md "Platform notes"), so by default we build the host from the
# last sdk/v3 release that still contained it as a package. It speaks the same language-host
# gRPC protocol, but it takes Pulumi.yaml's `virtualenv` only from -root/-virtualenv flags that
# the v3.274 CLI no longer passes; so BIN_DIR's pulumi-language-python is a small launcher
# (scripts/langhost-launcher, Go) that reads the project's Pulumi.yaml and starts that host with
# those flags. The launcher also proxies the host's gRPC service and serves RunPlugin itself: the
# v3.274 CLI runs a Python policy pack through RunPlugin with the pack in a field the v3.68 host
# does not read (it would run the program's own __main__.py instead). Set PULUMI_LANGHOST_VERSION to a served pseudo-version to build the
# same-release host instead (then no launcher is needed or used).
LANGHOST_NESTED_MODULE="github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3"
LANGHOST_VERSION="${PULUMI_LANGHOST_VERSION:-}"
LANGHOST_LEGACY_SDK="v3.68.0"

CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/pulumi-tdx/pulumi-${PULUMI_VERSION}-langhost-${LANGHOST_VERSION:-sdk-$LANGHOST_LEGACY_SDK}"
NAMES=(pulumi pulumi-language-python pulumi-language-python-exec pulumi-resource-pulumi-python)
# The YAML language host is a module of its own (github.com/pulumi/pulumi-yaml), served by the
# proxy in two versions only (v1.11.1, v1.25.0). v1.25.0 requires pulumi pkg/sdk v3.206.0 and does
# not compile against v3.274.1 (plugin API changes), so it is built with its own requirements. The
# language-host gRPC protocol it speaks to the CLI is stable across those releases.
YAML_MODULE="github.com/pulumi/pulumi-yaml"
YAML_VERSION="${PULUMI_YAML_VERSION:-v1.25.0}"
YAML_DIR="$CACHE_DIR/yaml-$YAML_VERSION"
# The Node.js language host: like the Python one, a nested module since v3.69 that our Go proxy
# does not serve, so it is built from the last sdk/v3 release that still contained it as a
# package. It runs programs on a current @pulumi/pulumi (examples/typescript pins one; the
# program's own node_modules supplies the runtime, the host only starts it) and needs no launcher.
NODEJS_LANGHOST_SDK="${PULUMI_NODEJS_LANGHOST_SDK:-v3.68.0}"
NODEJS_DIR="$CACHE_DIR/nodejs-sdk-$NODEJS_LANGHOST_SDK"
# The Go language host: a nested module since v3.66 that the Go proxy does not serve, so it is
# built from the last sdk/v3 release that still holds it. It only builds and runs the program.
GO_LANGHOST_SDK="${PULUMI_GO_LANGHOST_SDK:-v3.65.0}"
GO_LANGHOST_DIR="$CACHE_DIR/go-langhost-$GO_LANGHOST_SDK"

log() { printf 'install-pulumi: %s\n' "$*" >&2; }

mkdir -p "$BIN_DIR"
BIN_DIR="$(cd "$BIN_DIR" && pwd -P)"

# Make "$BIN_DIR/$name" a symlink to $target, touching nothing when it already is.
link() {
    local target="$1" name="$2"
    if [ "$(readlink "$BIN_DIR/$name" 2>/dev/null || true)" != "$target" ]; then
        ln -sfn "$target" "$BIN_DIR/$name"
        log "linked $BIN_DIR/$name -> $target"
    fi
}

# wrap_cli REAL_PULUMI: BIN_DIR/pulumi becomes a two-line script that runs the real CLI with
# SIGINT at its default disposition. A caller that ignores SIGINT (a background job of a
# non-interactive shell, nohup, some CI runners) passes SIG_IGN down to every plugin; the
# Python language host then ignores the SIGINT the CLI sends when it closes its plugins, and
# the CLI waits 5 s before killing it, on every command (docs/automation.md).
# It also turns grpc's fork handlers off (unless the caller set them) for every provider it
# starts: libvirt forks an ssh child per qemu+ssh:// connection from a provider's threads, and
# with the handlers on, grpc's child-side code broke those children (docs/shared-hosts.md).
wrap_cli() {
    local real="$1" want
    want="$(printf '#!/bin/sh\n# pulumi-tdx: the Pulumi CLI with SIGINT at its default disposition (docs/automation.md)\n# and grpc fork handlers off for the providers it starts (qemu+ssh://, docs/shared-hosts.md)\nGRPC_ENABLE_FORK_SUPPORT="${GRPC_ENABLE_FORK_SUPPORT:-false}"; export GRPC_ENABLE_FORK_SUPPORT\nexec /usr/bin/env --default-signal=INT %s "$@"\n' "$real")"
    if [ -L "$BIN_DIR/pulumi" ] || [ "$(cat "$BIN_DIR/pulumi" 2>/dev/null)" != "$want" ]; then
        rm -f "$BIN_DIR/pulumi"
        printf '%s\n' "$want" >"$BIN_DIR/pulumi"
        chmod 755 "$BIN_DIR/pulumi"
        log "wrote $BIN_DIR/pulumi (runs $real with SIGINT at its default disposition)"
    fi
}

# wrapper_module DIR MAIN_PACKAGE "module version"...: a go.mod + tools.go that pins them.
wrapper_module() {
    local dir="$1" main="$2"
    shift 2
    {
        printf 'module pulumi-tdx.local/build\n\ngo 1.26\n\nrequire (\n'
        printf '\t%s\n' "$@"
        printf ')\n\nreplace github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e\n'
    } >"$dir/go.mod"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$main" >"$dir/tools.go"
}

go_bin() { command -v go 2>/dev/null || echo /usr/local/go/bin/go; }

# build_langhost DIR PACKAGE REQUIREMENT VERSION_FLAG: DIR/<PACKAGE's last element>, built once
# per machine (minutes on 2 cores for YAML) from a wrapper module that requires REQUIREMENT
# ("module version"), with VERSION_FLAG ("pkg.Var=version") linked in. Swapped in whole, like
# the CLI, so a failed build leaves nothing that could look like a result.
build_langhost() {
    local dir="$1" pkg="$2" requirement="$3" version_flag="$4" name go
    name="$(basename "$pkg")"
    [ -x "$dir/$name" ] && return 0
    go="$(go_bin)"
    [ -x "$go" ] || { log "go not found (need Go >= 1.26)"; exit 1; }
    # Globals, not locals: the EXIT trap runs after the function is gone.
    lsrc="$dir.src.$$"
    lstage="$dir.tmp.$$"
    rm -rf "$lsrc" "$lstage"
    mkdir -p "$lsrc" "$lstage"
    trap 'rm -rf "$lsrc" "$lstage"' EXIT
    wrapper_module "$lsrc" "$pkg" "$requirement"
    log "building $name of $requirement (once per machine)"
    (cd "$lsrc" && GOFLAGS="-mod=mod" GOTOOLCHAIN=local "$go" mod tidy && \
        GOFLAGS="-mod=mod" GOTOOLCHAIN=local "$go" build -trimpath \
        -ldflags "-X $version_flag" -o "$lstage/$name" "$pkg")
    chmod 755 "$lstage/$name"
    if [ ! -x "$dir/$name" ]; then
        rm -rf "$dir"
        mv "$lstage" "$dir" || true  # a concurrent install may have won the race
    fi
    rm -rf "$lsrc" "$lstage"
    trap - EXIT
}

SDK_VERSION_VAR="github.com/pulumi/pulumi/sdk/v3/go/common/version.Version"

build_yaml() {
    build_langhost "$YAML_DIR" "$YAML_MODULE/cmd/pulumi-language-yaml" \
        "$YAML_MODULE $YAML_VERSION" "$YAML_MODULE/pkg/version.Version=$YAML_VERSION"
}

build_go_langhost() {
    build_langhost "$GO_LANGHOST_DIR" github.com/pulumi/pulumi/sdk/v3/go/pulumi-language-go \
        "github.com/pulumi/pulumi/sdk/v3 $GO_LANGHOST_SDK" "$SDK_VERSION_VAR=$GO_LANGHOST_SDK"
}

build_nodejs() {
    build_langhost "$NODEJS_DIR" github.com/pulumi/pulumi/sdk/v3/nodejs/cmd/pulumi-language-nodejs \
        "github.com/pulumi/pulumi/sdk/v3 $NODEJS_LANGHOST_SDK" "$SDK_VERSION_VAR=$NODEJS_LANGHOST_SDK"
}

# --- 1. Reuse a pulumi that is already installed -------------------------------
if existing="$(command -v pulumi 2>/dev/null)"; then
    existing_dir="$(cd "$(dirname "$existing")" && pwd -P)"
    # Our own bin dir on PATH does not count: it may hold stale or broken links.
    if [ "$existing_dir" != "$BIN_DIR" ]; then
        for name in "${NAMES[@]}"; do
            if [ "$name" != pulumi ] && [ -x "$existing_dir/$name" ]; then
                link "$existing_dir/$name" "$name"
            fi
        done
        if [ -x "$existing_dir/pulumi-language-yaml" ]; then
            link "$existing_dir/pulumi-language-yaml" pulumi-language-yaml
        else
            build_yaml
            link "$YAML_DIR/pulumi-language-yaml" pulumi-language-yaml
        fi
        if [ -x "$existing_dir/pulumi-language-go" ]; then
            link "$existing_dir/pulumi-language-go" pulumi-language-go
        else
            build_go_langhost
            link "$GO_LANGHOST_DIR/pulumi-language-go" pulumi-language-go
        fi
        if [ -x "$existing_dir/pulumi-language-nodejs" ]; then
            link "$existing_dir/pulumi-language-nodejs" pulumi-language-nodejs
        else
            build_nodejs
            link "$NODEJS_DIR/pulumi-language-nodejs" pulumi-language-nodejs
        fi
        wrap_cli "$existing_dir/pulumi"
        exit 0
    fi
fi

# --- 2. Cached build --------------------------------------------------------------
build() {
    local go
    go="$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)"
    [ -x "$go" ] || { log "go not found (need Go >= 1.26)"; exit 1; }

    # Globals, not locals: the EXIT trap below runs after the function is gone.
    src="$CACHE_DIR/src"
    stage="$CACHE_DIR/bin.tmp"
    rm -rf "$src" "$stage"
    mkdir -p "$src/cli" "$src/langhost" "$stage"
    # A failed build leaves nothing behind that could look like a result.
    trap 'rm -rf "$src" "$stage"' EXIT
    export GOFLAGS="-mod=mod" GOTOOLCHAIN=local

    # Only the main module's replace lines apply, so pulumi's own clipboard fork is
    # repeated here, and its local-path replaces become pinned versions.
    wrapper_module "$src/cli" "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi" \
        "github.com/pulumi/pulumi/pkg/v3 $PULUMI_VERSION" "github.com/pulumi/pulumi/sdk/v3 $PULUMI_VERSION"
    local langhost_pkg
    if [ -n "$LANGHOST_VERSION" ]; then
        langhost_pkg="$LANGHOST_NESTED_MODULE"
        wrapper_module "$src/langhost" "$langhost_pkg" "$LANGHOST_NESTED_MODULE $LANGHOST_VERSION"
    else
        langhost_pkg="github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python"
        wrapper_module "$src/langhost" "$langhost_pkg" "github.com/pulumi/pulumi/sdk/v3 $LANGHOST_LEGACY_SDK"
    fi

    # Without -X the binaries report an empty version, which breaks plugin checks.
    local ldflags="-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION"
    log "building pulumi $PULUMI_VERSION (several minutes on 2 cores, once per machine)"
    (cd "$src/langhost" && "$go" mod tidy && \
        "$go" build -trimpath -ldflags "$ldflags" -o "$stage/pulumi-language-python" "$langhost_pkg")
    (cd "$src/cli" && "$go" mod tidy && \
        "$go" build -trimpath -ldflags "$ldflags" -o "$stage/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
    # The two shims ship as plain files in sdk/v3 of the CLI's release; the module cache is
    # read-only, so copy them out.
    local sdk_dir
    sdk_dir="$(cd "$src/cli" && "$go" list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
    cp "$sdk_dir/python/dist/pulumi-resource-pulumi-python" "$stage/"
    cp "$sdk_dir/python/cmd/pulumi-language-python-exec" "$stage/"
    chmod 755 "$stage"/*
    # Swap in whole so an interrupted build never looks complete.
    rm -rf "$CACHE_DIR/bin"
    mv "$stage" "$CACHE_DIR/bin"
    rm -rf "$src"
}

complete=1
for name in "${NAMES[@]}"; do
    [ -x "$CACHE_DIR/bin/$name" ] || complete=0
done
if [ "$complete" = 0 ]; then
    build
fi
build_yaml
build_go_langhost
build_nodejs

# --- 3. The language-host launcher (legacy v3.68 host only) ------------------------
# A bin set beside the CLI build: hard links of the four files, the v3.68 host renamed to
# pulumi-language-python-host, and the launcher as pulumi-language-python. All must sit in one
# directory: the CLI prefers the language host found next to its own resolved path, and the
# v3.68 host finds pulumi-language-python-exec next to its own. Keyed by the launcher's source
# hash (and the YAML, Go and Node.js hosts' versions), so a changed launcher is rebuilt and a
# finished set is never modified (other checkouts may be using it). pulumi-language-yaml, -go and
# -nodejs are in the set too: the CLI looks for its bundled language hosts beside
# its own resolved path and warns ("using pulumi-language-yaml from $PATH ... expected ...") when
# the one on PATH resolves elsewhere.
LAUNCHER_SRC="$REPO_ROOT/scripts/langhost-launcher"
bin_set="$CACHE_DIR/bin"
if [ -z "$LANGHOST_VERSION" ]; then
    launcher_hash="$(cat "$LAUNCHER_SRC"/*.go "$LAUNCHER_SRC/go.mod" "$LAUNCHER_SRC/go.sum" \
        | sha256sum | cut -c1-12)"
    bin_set="$CACHE_DIR/bin-launcher-$launcher_hash-yaml-$YAML_VERSION-go-$GO_LANGHOST_SDK-nodejs-$NODEJS_LANGHOST_SDK"
    if [ ! -x "$bin_set/pulumi-language-python" ] || [ ! -x "$bin_set/pulumi-language-python-host" ] \
        || [ ! -x "$bin_set/pulumi-language-yaml" ] || [ ! -x "$bin_set/pulumi-language-go" ] \
        || [ ! -x "$bin_set/pulumi-language-nodejs" ]; then
        go="$(go_bin)"
        set_stage="$bin_set.tmp.$$"
        rm -rf "$set_stage"
        mkdir -p "$set_stage"
        trap 'rm -rf "$set_stage"' EXIT
        for name in pulumi pulumi-language-python-exec pulumi-resource-pulumi-python; do
            ln "$CACHE_DIR/bin/$name" "$set_stage/$name" 2>/dev/null \
                || cp -p "$CACHE_DIR/bin/$name" "$set_stage/$name"
        done
        ln "$CACHE_DIR/bin/pulumi-language-python" "$set_stage/pulumi-language-python-host" \
            2>/dev/null || cp -p "$CACHE_DIR/bin/pulumi-language-python" "$set_stage/pulumi-language-python-host"
        ln "$YAML_DIR/pulumi-language-yaml" "$set_stage/pulumi-language-yaml" 2>/dev/null \
            || cp -p "$YAML_DIR/pulumi-language-yaml" "$set_stage/pulumi-language-yaml"
        ln "$GO_LANGHOST_DIR/pulumi-language-go" "$set_stage/pulumi-language-go" 2>/dev/null \
            || cp -p "$GO_LANGHOST_DIR/pulumi-language-go" "$set_stage/pulumi-language-go"
        ln "$NODEJS_DIR/pulumi-language-nodejs" "$set_stage/pulumi-language-nodejs" 2>/dev/null \
            || cp -p "$NODEJS_DIR/pulumi-language-nodejs" "$set_stage/pulumi-language-nodejs"
        log "building the language-host launcher ($LAUNCHER_SRC)"
        (cd "$LAUNCHER_SRC" && GOFLAGS="-mod=readonly" GOTOOLCHAIN=local \
            "$go" build -trimpath -o "$set_stage/pulumi-language-python" .)
        if [ ! -e "$bin_set" ]; then
            mv "$set_stage" "$bin_set" || true  # a concurrent install may have won the race
        fi
        rm -rf "$set_stage"
        trap - EXIT
    fi
fi

# Links, not copies: the language host finds pulumi-language-python-exec beside its
# resolved path, which is the cache dir where all files live together. `pulumi` itself is
# the SIGINT wrapper (wrap_cli) around the CLI of that same directory.
if [ ! -x "$bin_set/pulumi-language-yaml" ]; then
    # The same-release host (PULUMI_LANGHOST_VERSION): its set is $CACHE_DIR/bin.
    ln "$YAML_DIR/pulumi-language-yaml" "$bin_set/pulumi-language-yaml" 2>/dev/null \
        || cp -p "$YAML_DIR/pulumi-language-yaml" "$bin_set/pulumi-language-yaml"
fi
if [ ! -x "$bin_set/pulumi-language-go" ]; then
    ln "$GO_LANGHOST_DIR/pulumi-language-go" "$bin_set/pulumi-language-go" 2>/dev/null \
        || cp -p "$GO_LANGHOST_DIR/pulumi-language-go" "$bin_set/pulumi-language-go"
fi
if [ ! -x "$bin_set/pulumi-language-nodejs" ]; then
    ln "$NODEJS_DIR/pulumi-language-nodejs" "$bin_set/pulumi-language-nodejs" 2>/dev/null \
        || cp -p "$NODEJS_DIR/pulumi-language-nodejs" "$bin_set/pulumi-language-nodejs"
fi
for name in "${NAMES[@]}" pulumi-language-yaml pulumi-language-go pulumi-language-nodejs; do
    [ "$name" = pulumi ] || link "$bin_set/$name" "$name"
done
wrap_cli "$bin_set/pulumi"
