// pulumi-language-python: a launcher in front of the Python language host built from sdk/v3
// v3.68.0 (pulumi-language-python-host, beside this binary).
//
// The CLI (v3.274.1) starts its language host with the engine address as the only argument,
// in the program directory, and passes Pulumi.yaml's runtime options inside each RPC. The
// v3.68 host predates that in two places:
//
//   - it reads the virtualenv only from its -root and -virtualenv flags, which the CLI no longer
//     gives. This launcher finds the project's Pulumi.yaml (from the working directory upwards,
//     as the CLI does) and starts the host with -root=<project dir> and
//     -virtualenv=<runtime.options.virtualenv>, which the host resolves against -root like the
//     current Python host does. Like the current host, it then ignores PULUMI_PYTHON_CMD (the
//     v3.68 host would look for that command inside the virtualenv's bin directory). Without a
//     virtualenv option the host runs unchanged.
//   - its RunPlugin (how the CLI starts a Python policy pack) reads the deprecated `program`
//     field, which the CLI no longer sets: it would run `python ""`, i.e. the __main__.py of the
//     working directory, which is the Pulumi program itself. So the launcher sits in front of the
//     host as a gRPC proxy (proxy.go): every call goes to the host unchanged, except RunPlugin,
//     which the launcher serves as the current host does (runplugin.go).
//   - it misses the pulumi-plugin.json of an editable install and so reports a resource plugin
//     that the package says it has none of; the launcher drops it from GetRequiredPlugins
//     (editable.go).
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

const hostName = "pulumi-language-python-host"

type project struct {
	Runtime yaml.Node `yaml:"runtime"`
}

type runtimeOptions struct {
	Options struct {
		Virtualenv string `yaml:"virtualenv"`
	} `yaml:"options"`
}

func main() {
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		fail("cannot locate itself: %v", err)
	}
	host := filepath.Join(filepath.Dir(self), hostName)
	var args []string
	env := os.Environ()
	root, virtualenv, err := projectVirtualenv()
	if err != nil {
		fail("%v", err)
	}
	if virtualenv != "" {
		venv = virtualenv
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(root, venv)
		}
		args = append(args, "-root="+root, "-virtualenv="+virtualenv)
		env = without(env, "PULUMI_PYTHON_CMD")
	}
	args = append(args, os.Args[1:]...)
	os.Exit(serve(host, args, env))
}

// projectVirtualenv returns the directory of the nearest Pulumi.yaml (or Pulumi.yml) at or
// above the working directory and its runtime.options.virtualenv ("" when there is none).
func projectVirtualenv() (string, string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", "", err
	}
	for {
		for _, name := range []string{"Pulumi.yaml", "Pulumi.yml"} {
			path := filepath.Join(dir, name)
			data, err := os.ReadFile(path)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", "", err
			}
			virtualenv, err := virtualenvOption(data)
			if err != nil {
				return "", "", fmt.Errorf("%s: %w", path, err)
			}
			return dir, virtualenv, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", "", nil
		}
		dir = parent
	}
}

// virtualenvOption reads runtime.options.virtualenv; runtime may also be a plain name.
func virtualenvOption(data []byte) (string, error) {
	var proj project
	if err := yaml.Unmarshal(data, &proj); err != nil {
		return "", err
	}
	if proj.Runtime.Kind != yaml.MappingNode {
		return "", nil
	}
	var runtime runtimeOptions
	if err := proj.Runtime.Decode(&runtime); err != nil {
		return "", err
	}
	return runtime.Options.Virtualenv, nil
}

func without(env []string, name string) []string {
	kept := env[:0:0]
	for _, entry := range env {
		if !strings.HasPrefix(entry, name+"=") {
			kept = append(kept, entry)
		}
	}
	return kept
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "pulumi-language-python (pulumi-tdx launcher): "+format+"\n", args...)
	os.Exit(1)
}
