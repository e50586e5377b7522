package main

import (
	"os"
	"path/filepath"
	"testing"
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
