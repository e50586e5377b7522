package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/encoding/protojson"
)

// The v3.68 host answers GetRequiredPlugins by running `python -m pip list -v --format json` in
// the virtualenv: about 0.3 s of every pulumi command here (preview, up, destroy, refresh), a
// sixth of a no-op preview. Its answer depends only on what is installed in the virtualenv, so
// the launcher keeps it, keyed by the virtualenv's path, the working directory and the
// modification times of its site-packages directories: installing, upgrading or removing a distribution adds or removes a
// *.dist-info entry there, which changes that time, and the next command asks the host again.
// Virtualenvs that see the system's site-packages (include-system-site-packages = true) are
// never cached: what is installed there does not show in the key. PULUMI_TDX_NO_PLUGIN_CACHE=1
// turns the cache off.

// pluginCacheKey is "" when the answer for venv must not be cached.
func pluginCacheKey(venv string) string {
	if venv == "" || os.Getenv("PULUMI_TDX_NO_PLUGIN_CACHE") != "" {
		return ""
	}
	cfg, err := os.ReadFile(filepath.Join(venv, "pyvenv.cfg"))
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(cfg), "\n") {
		key, value, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(key) == "include-system-site-packages" &&
			strings.EqualFold(strings.TrimSpace(value), "true") {
			return ""
		}
	}
	sites, _ := filepath.Glob(filepath.Join(venv, "lib", "python*", "site-packages"))
	if len(sites) == 0 {
		return ""
	}
	// `python -m pip` also lists distributions found in its working directory (the program's),
	// so that directory is part of the key as well.
	cwd, _ := os.Getwd()
	h := sha256.New()
	fmt.Fprintf(h, "v1\x00%s\x00%s\x00", venv, cwd)
	for _, site := range sites {
		info, err := os.Stat(site)
		if err != nil {
			return ""
		}
		fmt.Fprintf(h, "%s\x00%d\x00", site, info.ModTime().UnixNano())
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// pluginCacheDir is where the answers live (~/.cache/pulumi-tdx/langhost-plugins).
func pluginCacheDir() string {
	base, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(base, "pulumi-tdx", "langhost-plugins")
}

func loadCachedPlugins(dir, key string) *pulumirpc.GetRequiredPluginsResponse {
	if dir == "" || key == "" {
		return nil
	}
	data, err := os.ReadFile(filepath.Join(dir, key+".json"))
	if err != nil {
		return nil
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{}
	if protojson.Unmarshal(data, resp) != nil {
		return nil
	}
	return resp
}

// storeCachedPlugins writes the host's answer whole (a temporary file renamed into place), so a
// concurrent command reads either nothing or a complete answer. Failures only cost the cache.
func storeCachedPlugins(dir, key string, resp *pulumirpc.GetRequiredPluginsResponse) {
	if dir == "" || key == "" {
		return
	}
	data, err := protojson.Marshal(resp)
	if err != nil || os.MkdirAll(dir, 0o755) != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, key+".*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(data)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), filepath.Join(dir, key+".json")) != nil {
		_ = os.Remove(tmp.Name())
	}
}
