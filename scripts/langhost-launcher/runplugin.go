package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// runPluginService is LanguageRuntime with RunPlugin and GetRequiredPlugins (editable.go) alone:
// the proxy's other calls fall through to the host.
var runPluginService = grpc.ServiceDesc{
	ServiceName: "pulumirpc.LanguageRuntime",
	HandlerType: (*any)(nil),
	Methods:     []grpc.MethodDesc{{MethodName: "GetRequiredPlugins", Handler: getRequiredPlugins}},
	Streams: []grpc.StreamDesc{{
		StreamName:    "RunPlugin",
		ServerStreams: true,
		Handler: func(_ any, stream grpc.ServerStream) error {
			req := &pulumirpc.RunPluginRequest{}
			if err := stream.RecvMsg(req); err != nil {
				return err
			}
			return runPlugin(req, stream)
		},
	}},
	Metadata: "pulumi/language.proto",
}

// pluginCommand is how the current Python host runs a plugin program (a policy pack is one):
// `python <program directory> <args>`, with the python of runtime.options.virtualenv (resolved
// against the plugin's root directory, where its PulumiPolicy.yaml or PulumiPlugin.yaml is),
// else python3 (or PULUMI_PYTHON_CMD).
func pluginCommand(req *pulumirpc.RunPluginRequest) (*exec.Cmd, error) {
	info := req.GetInfo()
	program := info.GetProgramDirectory()
	if program == "" {
		program = req.GetProgram() // CLIs before ProgramInfo
	}
	if program == "" {
		return nil, errors.New("RunPlugin: no plugin program given")
	}
	env := append(os.Environ(), req.GetEnv()...)
	python := os.Getenv("PULUMI_PYTHON_CMD")
	if python == "" {
		python = "python3"
	}
	if venv, _ := info.GetOptions().AsMap()["virtualenv"].(string); venv != "" {
		if !filepath.IsAbs(venv) {
			venv = filepath.Join(info.GetRootDirectory(), venv)
		}
		python = filepath.Join(venv, "bin", "python")
		if _, err := os.Stat(python); err != nil {
			return nil, fmt.Errorf("the plugin's virtualenv %s has no bin/python (create it with "+
				"python3 -m venv %s and install the plugin's requirements)", venv, venv)
		}
		env = append(without(without(env, "PYTHONHOME"), "PULUMI_PYTHON_CMD"),
			"VIRTUAL_ENV="+venv, "PATH="+filepath.Join(venv, "bin")+":"+os.Getenv("PATH"))
	}
	cmd := exec.Command(python, append([]string{program}, req.GetArgs()...)...)
	cmd.Dir = req.GetPwd()
	cmd.Env = env
	return cmd, nil
}

func runPlugin(req *pulumirpc.RunPluginRequest, stream grpc.ServerStream) error {
	cmd, err := pluginCommand(req)
	if err != nil {
		return err
	}
	var mu sync.Mutex
	send := func(resp *pulumirpc.RunPluginResponse) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.SendMsg(resp)
	}
	cmd.Stdout = streamWriter(func(b []byte) error {
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stdout{Stdout: b}})
	})
	cmd.Stderr = streamWriter(func(b []byte) error {
		return send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Stderr{Stderr: b}})
	})
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cannot run the plugin: %w", err)
	}
	// The CLI cancels the call when it closes the plugin.
	done := make(chan struct{})
	go func() {
		select {
		case <-stream.Context().Done():
			_ = cmd.Process.Kill()
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return send(&pulumirpc.RunPluginResponse{
			Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: int32(exit.ExitCode())},
		})
	}
	return err
}

// streamWriter sends each write as one message.
type streamWriter func([]byte) error

func (w streamWriter) Write(b []byte) (int, error) {
	if err := w(append([]byte(nil), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}
