package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// The v3.68 host decides whether a `pulumi-<name>` package needs a resource plugin by reading
// <site-packages>/pulumi_<name>/pulumi-plugin.json. An editable install (`pip install -e`, what
// `make setup` does) keeps its sources elsewhere, so the host never sees `"resource": false` and
// reports a "tdx" plugin that no dynamic-provider program needs. While no such plugin existed
// that cost nothing (plugin acquisition is off); with `pulumi-resource-tdx` on PATH the CLI
// finds it and prints "warning: using pulumi-resource-tdx from $PATH" on every command of every
// stack. So the launcher answers GetRequiredPlugins itself: the host's answer, without resource
// plugins whose editable sources carry a pulumi-plugin.json that says "resource": false, as the
// current Python host (and the v3.68 host for an ordinary install) would.

// hostConn is the v3.68 host's gRPC connection and venv the project's virtualenv ("" when
// Pulumi.yaml names none); both are set before the proxy serves.
var (
	hostConn *grpc.ClientConn
	venv     string
)

func getRequiredPlugins(_ any, ctx context.Context, dec func(any) error,
	_ grpc.UnaryServerInterceptor,
) (any, error) {
	req := &pulumirpc.GetRequiredPluginsRequest{}
	if err := dec(req); err != nil {
		return nil, err
	}
	// The host's own answer, cached (plugincache.go); the filter below always runs live.
	dir, key := pluginCacheDir(), pluginCacheKey(venv)
	resp := loadCachedPlugins(dir, key)
	if resp == nil {
		var err error
		resp, err = pulumirpc.NewLanguageRuntimeClient(hostConn).GetRequiredPlugins(ctx, req)
		if err != nil {
			return nil, err
		}
		storeCachedPlugins(dir, key, resp)
	}
	resp.Plugins = withoutPluginless(resp.GetPlugins(), editableModules(venv))
	return resp, nil
}

// mappingEntry is one 'module': 'path' pair of setuptools' editable finder MAPPING.
var mappingEntry = regexp.MustCompile(`'([A-Za-z_][A-Za-z0-9_]*)':\s*'([^']+)'`)

// editableModules maps module name -> source directory for the editable installs of venv, from
// setuptools' __editable___*_finder.py files (their MAPPING line).
func editableModules(venv string) map[string]string {
	modules := map[string]string{}
	if venv == "" {
		return modules
	}
	finders, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages",
		"__editable___*_finder.py"))
	for _, finder := range finders {
		data, err := os.ReadFile(finder)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if !strings.HasPrefix(line, "MAPPING") {
				continue
			}
			for _, m := range mappingEntry.FindAllStringSubmatch(line, -1) {
				modules[m[1]] = m[2]
			}
		}
	}
	return modules
}

// withoutPluginless drops the resource plugins whose package (pulumi_<name>, editable) says
// "resource": false in its pulumi-plugin.json; everything else is kept as the host said it.
func withoutPluginless(deps []*pulumirpc.PluginDependency,
	modules map[string]string,
) []*pulumirpc.PluginDependency {
	kept := make([]*pulumirpc.PluginDependency, 0, len(deps))
	for _, dep := range deps {
		if dep.GetKind() == "resource" {
			module := "pulumi_" + strings.ReplaceAll(dep.GetName(), "-", "_")
			if dir, ok := modules[module]; ok && !declaresPlugin(dir) {
				continue
			}
		}
		kept = append(kept, dep)
	}
	return kept
}

// declaresPlugin is false only for a readable pulumi-plugin.json with "resource": false.
func declaresPlugin(moduleDir string) bool {
	data, err := os.ReadFile(filepath.Join(moduleDir, "pulumi-plugin.json"))
	if err != nil {
		return true
	}
	var meta struct {
		Resource *bool `json:"resource"`
	}
	if json.Unmarshal(data, &meta) != nil || meta.Resource == nil {
		return true
	}
	return *meta.Resource
}
