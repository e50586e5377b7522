package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// maxMessage matches the Pulumi CLI's own gRPC limit (400 MiB): a large program's messages
// pass through unchanged.
const maxMessage = 400 << 20

// serve starts the v3.68 host with args, puts the proxy in front of it, prints the proxy's
// port (what the CLI reads from a language host) and returns the host's exit code.
func serve(host string, args []string, env []string) int {
	cmd := exec.Command(host, args...)
	cmd.Env = env
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fail("%v", err)
	}
	// The CLI interrupts the whole process group when it is done; the host gets that SIGINT
	// itself, and the launcher stays until the host has exited. A SIGINT ignored by our parent
	// stays ignored, for the host too, exactly as when the launcher exec'd it (handling it here
	// would reset it for the host: docs/automation.md pins what an ignored SIGINT costs).
	watched := []os.Signal{syscall.SIGTERM}
	if !signal.Ignored(syscall.SIGINT) {
		watched = append(watched, syscall.SIGINT)
	}
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, watched...)
	if err := cmd.Start(); err != nil {
		fail("cannot run %s: %v", host, err)
	}
	go func() {
		for sig := range signals {
			_ = cmd.Process.Signal(sig)
		}
	}()
	lines := bufio.NewReader(out)
	first, err := lines.ReadString('\n')
	if err != nil {
		_ = cmd.Wait()
		fail("the language host exited before it printed its port: %v", err)
	}
	hostPort := strings.TrimSpace(first)
	go func() { _, _ = io.Copy(os.Stdout, lines) }()

	conn, err := grpc.NewClient("127.0.0.1:"+hostPort,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMessage),
			grpc.MaxCallSendMsgSize(maxMessage)))
	if err != nil {
		fail("cannot reach the language host on port %s: %v", hostPort, err)
	}
	hostConn = conn
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail("%v", err)
	}
	server := grpc.NewServer(
		grpc.ForceServerCodec(frameCodec{}),
		grpc.MaxRecvMsgSize(maxMessage), grpc.MaxSendMsgSize(maxMessage),
		grpc.UnknownServiceHandler(forwardTo(conn)),
	)
	server.RegisterService(&runPluginService, nil)
	go func() { _ = server.Serve(listener) }()
	fmt.Printf("%d\n", listener.Addr().(*net.TCPAddr).Port)

	code := 0
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fail("%v", err)
		}
		code = exit.ExitCode()
		if code < 0 {
			code = 1 // killed by a signal
		}
	}
	server.Stop()
	_ = conn.Close()
	return code
}

// frame is one message of a forwarded call, kept as the bytes that came in.
type frame struct{ payload []byte }

// frameCodec passes frames through untouched and (un)marshals typed messages (RunPlugin's).
type frameCodec struct{}

func (frameCodec) Name() string { return "proto" }

func (frameCodec) Marshal(v any) ([]byte, error) {
	if f, ok := v.(*frame); ok {
		return f.payload, nil
	}
	return proto.Marshal(v.(proto.Message))
}

func (frameCodec) Unmarshal(data []byte, v any) error {
	if f, ok := v.(*frame); ok {
		f.payload = append([]byte(nil), data...)
		return nil
	}
	return proto.Unmarshal(data, v.(proto.Message))
}

var _ encoding.Codec = frameCodec{}

// forwardTo relays any call it is given to the same method on conn, messages, headers,
// trailers and status included.
func forwardTo(conn *grpc.ClientConn) grpc.StreamHandler {
	return func(_ any, in grpc.ServerStream) error {
		method, ok := grpc.MethodFromServerStream(in)
		if !ok {
			return errors.New("no method in the call")
		}
		ctx, cancel := context.WithCancel(in.Context())
		defer cancel()
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			ctx = metadata.NewOutgoingContext(ctx, md.Copy())
		}
		desc := &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}
		outbound, err := conn.NewStream(ctx, desc, method, grpc.ForceCodec(frameCodec{}))
		if err != nil {
			return err
		}
		go func() {
			for {
				f := &frame{}
				if err := in.RecvMsg(f); err != nil {
					if errors.Is(err, io.EOF) {
						_ = outbound.CloseSend()
					} else {
						cancel()
					}
					return
				}
				if err := outbound.SendMsg(f); err != nil {
					return
				}
			}
		}()
		header, err := outbound.Header()
		if err != nil {
			return err
		}
		if err := in.SendHeader(header); err != nil {
			return err
		}
		for {
			f := &frame{}
			if err := outbound.RecvMsg(f); err != nil {
				in.SetTrailer(outbound.Trailer())
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err // the host's status, unchanged
			}
			if err := in.SendMsg(f); err != nil {
				return err
			}
		}
	}
}
