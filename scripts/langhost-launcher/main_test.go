package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestVirtualenvOption(t *testing.T) {
	cases := map[string]string{
		"name: p\nruntime: python\n":                                                      "",
		"name: p\nruntime:\n  name: python\n":                                             "",
		"name: p\nruntime:\n  name: python\n  options:\n    virtualenv: venv\n":           "venv",
		"name: p\nruntime:\n  name: python\n  options:\n    virtualenv: /abs/venv\n":      "/abs/venv",
		"name: p\nmain: src/\nruntime:\n  name: python\n  options:\n    toolchain: pip\n": "",
	}
	for text, want := range cases {
		got, err := virtualenvOption([]byte(text))
		if err != nil || got != want {
			t.Errorf("%q: got %q, %v; want %q", text, got, err, want)
		}
	}
}

func TestProjectIsFoundFromASubdirectory(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "src", "app")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := "name: p\nruntime:\n  name: python\n  options:\n    virtualenv: .venv\n"
	if err := os.WriteFile(filepath.Join(root, "Pulumi.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(sub)
	dir, venv, err := projectVirtualenv()
	if err != nil || dir != root || venv != ".venv" {
		t.Fatalf("got %q, %q, %v", dir, venv, err)
	}
}

func TestPluginRunsFromItsDirectoryWithItsOwnVirtualenv(t *testing.T) {
	pack := t.TempDir()
	venv := filepath.Join(pack, "venv")
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(venv, "bin", "python"), nil, 0o755); err != nil {
		t.Fatal(err)
	}
	options, err := structpb.NewStruct(map[string]any{"virtualenv": "venv"})
	if err != nil {
		t.Fatal(err)
	}
	req := &pulumirpc.RunPluginRequest{
		Pwd:  "/project",
		Args: []string{"127.0.0.1:1234"},
		Info: &pulumirpc.ProgramInfo{RootDirectory: pack, ProgramDirectory: pack, EntryPoint: ".",
			Options: options},
	}
	cmd, err := pluginCommand(req)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(venv, "bin", "python"), pack, "127.0.0.1:1234"}
	if cmd.Path != want[0] || strings.Join(cmd.Args, " ") != strings.Join(want, " ") || cmd.Dir != "/project" {
		t.Fatalf("got %q %q in %q; want %q", cmd.Path, cmd.Args, cmd.Dir, want)
	}
	if !contains(cmd.Env, "VIRTUAL_ENV="+venv) {
		t.Fatalf("VIRTUAL_ENV not set: %q", cmd.Env)
	}
}

func TestPluginWithoutAProgramIsRefusedNotRunFromTheWorkingDirectory(t *testing.T) {
	// The v3.68 host would run `python ""`: the working directory's __main__.py, i.e. the
	// Pulumi program itself.
	if _, err := pluginCommand(&pulumirpc.RunPluginRequest{Pwd: "/project"}); err == nil {
		t.Fatal("a request without a program was accepted")
	}
}

func TestPluginVirtualenvThatIsMissingIsNamed(t *testing.T) {
	options, _ := structpb.NewStruct(map[string]any{"virtualenv": "/nonexistent/venv"})
	_, err := pluginCommand(&pulumirpc.RunPluginRequest{
		Info: &pulumirpc.ProgramInfo{ProgramDirectory: "/pack", Options: options},
	})
	if err == nil || !strings.Contains(err.Error(), "/nonexistent/venv") {
		t.Fatalf("got %v", err)
	}
}

func contains(list []string, item string) bool {
	for _, entry := range list {
		if entry == item {
			return true
		}
	}
	return false
}

func TestEditablePackagesWithoutPluginAreDropped(t *testing.T) {
	venv := t.TempDir()
	site := filepath.Join(venv, "lib", "python3.11", "site-packages")
	src := t.TempDir()
	for name, resource := range map[string]string{"pulumi_tdx": "false", "pulumi_other": "true"} {
		dir := filepath.Join(src, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		json := `{"resource": ` + resource + `}`
		if err := os.WriteFile(filepath.Join(dir, "pulumi-plugin.json"), []byte(json), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	finder := "import sys\nMAPPING: dict[str, str] = {'pulumi_tdx': '" + src + "/pulumi_tdx', " +
		"'pulumi_other': '" + src + "/pulumi_other', 'tdx_provider': '/elsewhere'}\n"
	if err := os.WriteFile(filepath.Join(site, "__editable___pulumi_tdx_0_1_0_finder.py"),
		[]byte(finder), 0o644); err != nil {
		t.Fatal(err)
	}
	deps := []*pulumirpc.PluginDependency{
		{Name: "tdx", Kind: "resource", Version: "v0.1.0"},
		{Name: "other", Kind: "resource", Version: "v1.0.0"},
		{Name: "random", Kind: "resource", Version: "v4.0.0"},
	}
	var names []string
	for _, dep := range withoutPluginless(deps, editableModules(venv)) {
		names = append(names, dep.GetName())
	}
	if strings.Join(names, ",") != "other,random" {
		t.Errorf("kept %v, want other and random (tdx says resource: false)", names)
	}
	if got := len(withoutPluginless(deps, editableModules(""))); got != 3 {
		t.Errorf("without a virtualenv every plugin stays, kept %d", got)
	}
}

func TestPluginCacheKeyFollowsTheInstalledPackages(t *testing.T) {
	venv := t.TempDir()
	site := filepath.Join(venv, "lib", "python3.11", "site-packages")
	if err := os.MkdirAll(site, 0o755); err != nil {
		t.Fatal(err)
	}
	if pluginCacheKey(venv) != "" {
		t.Error("a directory without pyvenv.cfg is not a virtualenv: no key")
	}
	cfg := filepath.Join(venv, "pyvenv.cfg")
	if err := os.WriteFile(cfg, []byte("include-system-site-packages = false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := pluginCacheKey(venv)
	if first == "" || pluginCacheKey(venv) != first {
		t.Fatalf("want one stable key, got %q", first)
	}
	// pip installs a distribution: a new *.dist-info directory in site-packages
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(site, old, old); err != nil {
		t.Fatal(err)
	}
	before := pluginCacheKey(venv)
	if err := os.Mkdir(filepath.Join(site, "pulumi_random-4.0.0.dist-info"), 0o755); err != nil {
		t.Fatal(err)
	}
	if pluginCacheKey(venv) == before {
		t.Error("installing a distribution must change the key")
	}
	if err := os.WriteFile(cfg, []byte("include-system-site-packages = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pluginCacheKey(venv) != "" {
		t.Error("a virtualenv that sees the system's packages is not cached")
	}
}

func TestCachedPluginsRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cache")
	if loadCachedPlugins(dir, "k") != nil {
		t.Error("nothing stored yet")
	}
	resp := &pulumirpc.GetRequiredPluginsResponse{Plugins: []*pulumirpc.PluginDependency{
		{Name: "random", Kind: "resource", Version: "v4.0.0"}}}
	storeCachedPlugins(dir, "k", resp)
	got := loadCachedPlugins(dir, "k")
	if got == nil || len(got.GetPlugins()) != 1 || got.GetPlugins()[0].GetVersion() != "v4.0.0" {
		t.Errorf("got %v", got)
	}
}
