package testenv

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Options say which servers a test package needs.
type Options struct {
	Kube bool
	KubeOptions
	LDAP bool
	SlapdOptions
}

// Env is the set of servers a test package shares.
type Env struct {
	Kube *Kube
	LDAP *Slapd
	seq  atomic.Int64
}

// Start starts the servers o asks for and prints their start-up times.
func Start(ctx context.Context, o Options) (*Env, error) {
	e := &Env{}
	if o.Kube {
		k, err := StartKube(ctx, o.KubeOptions)
		if err != nil {
			return nil, fmt.Errorf("start the Kubernetes control plane: %w", err)
		}
		e.Kube = k
		fmt.Fprintf(os.Stderr, "testenv: control plane ready in %v (%s)\n", k.StartupTime.Round(time.Millisecond), k.Host)
	}
	if o.LDAP {
		s, err := StartSlapd(ctx, o.SlapdOptions)
		if err != nil {
			e.Stop()
			return nil, fmt.Errorf("start slapd: %w", err)
		}
		e.LDAP = s
		fmt.Fprintf(os.Stderr, "testenv: slapd ready in %v (%s, %s)\n", s.StartupTime.Round(time.Millisecond), s.URL, s.LDAPSURL)
	}
	return e, nil
}

// Stop stops every server.
func (e *Env) Stop() {
	if e == nil {
		return
	}
	e.LDAP.Stop()
	e.Kube.Stop()
}

// Main is the body of a test package's TestMain: it starts the servers, runs
// the tests, stops the servers and returns the exit code. A server that does
// not start fails the package with the reason; it never skips.
//
//	var env *testenv.Env
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{Kube: true}, &env)) }
func Main(m *testing.M, o Options, env **Env) int {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	e, err := Start(ctx, o)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: testenv: %v\n", err)
		return 1
	}
	*env = e
	defer e.Stop()
	return m.Run()
}

// Namespace creates a namespace with a unique name starting with prefix and
// the given labels, deleted when the test ends.
func (e *Env) Namespace(t testing.TB, prefix string, labels map[string]string) string {
	t.Helper()
	name := e.UniqueName(prefix)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := e.Kube.Client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
	return name
}
