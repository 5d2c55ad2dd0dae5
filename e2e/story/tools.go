package story

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// tool is a tool process run with its chart args and its service account.
type tool struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// kubeconfigFor writes a kubeconfig acting as the tool's ServiceAccount (the
// chart's RBAC, no more).
func (s *Story) kubeconfigFor(name string) (string, error) {
	path := filepath.Join(s.dir, name+".kubeconfig")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	err := s.env.Kube.WriteKubeconfigAs(path, "system:serviceaccount:"+chartNamespace+":"+name, testenv.ServiceAccountGroups(chartNamespace)...)
	return path, err
}

// command builds the tool's command line: its container args from the
// rendered chart, then the local overrides (later flags win).
func (s *Story) command(ctx context.Context, name string, extra ...string) (*exec.Cmd, *syncBuffer, error) {
	kc, err := s.kubeconfigFor(name)
	if err != nil {
		return nil, nil, err
	}
	args := append([]string{}, s.args[name]...)
	args = append(args, "--kubeconfig="+kc, "--admin-address=", "--log-format=json")
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.Bin, name), args...)
	cmd.Env = append(os.Environ(), "POD_NAMESPACE="+chartNamespace)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd, out, nil
}

// runOnce runs a tool to completion and returns its log.
func (s *Story) runOnce(ctx context.Context, name string, extra ...string) (string, error) {
	cmd, out, err := s.command(ctx, name, extra...)
	if err != nil {
		return "", err
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("%s %v: %w\n%s", name, extra, err, tailLines(out.String(), 15))
	}
	return out.String(), nil
}

// start runs a tool in the background until Stop.
func (s *Story) start(ctx context.Context, name string, extra ...string) (*tool, error) {
	cmd, out, err := s.command(ctx, name, extra...)
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	t := &tool{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { t.err = cmd.Wait(); close(t.done) }()
	s.procs = append(s.procs, t)
	return t, nil
}

func (t *tool) stop() {
	select {
	case <-t.done:
		return
	default:
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(15 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
}

func (t *tool) exited() bool {
	select {
	case <-t.done:
		return true
	default:
		return false
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func hostPort(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }

func tailLines(s string, n int) string {
	lines := bytes.Split([]byte(s), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// pollInterval is how often the story looks again at a state it waits for
// (with testenv.Poll: every wait is bounded).
const pollInterval = 100 * time.Millisecond
