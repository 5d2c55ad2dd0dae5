// Package story runs the whole system on a local control plane and LDAP
// server: the demo prints it for a person, and the end-to-end test asserts
// every step of the same run.
package story

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// Options configure a run.
type Options struct {
	// Root is the repository root (charts/ and the tool modules).
	Root string
	// Bin holds the four tool binaries (make build puts them in bin/).
	Bin string
	// Out receives the person-readable output.
	Out io.Writer
}

// Story is one run of the whole system.
type Story struct {
	opts Options
	p    *Printer
	env  *testenv.Env
	dir  string
	// args are each tool's container args from the rendered chart.
	args  map[string][]string
	procs []*tool
	// Results of each step, for the summary and the test.
	Results Results
}

// Results is what each step found.
type Results struct {
	StartKube, StartLDAP time.Duration
	// Maps are the ConfigMaps ldap-configmap wrote: name -> key -> value.
	Maps map[string]map[string]string
	// Identity is each user namespace's identity annotations after login.
	Identity map[string]map[string]string
	Logins   []Login
	// Admission lists each pod tried as a user.
	Admission []Attempt
	Walltime  Walltime
	Reap      Reap
}

// Login is one user's login.
type Login struct {
	User, Mode, Namespace string
	Created               []string
	Err                   error
}

// Attempt is one pod creation as a user.
type Attempt struct {
	Name         string
	WantAllowed  bool
	Allowed      bool
	Message      string
	AsUser       string
	NamespaceFor string
}

// Walltime is what job-pod-reaper did to the short job.
type Walltime struct {
	Pod             string
	Lifetime        time.Duration
	Deleted         bool
	DeletedAfter    time.Duration
	CompanionsGone  []string
	CompanionsLeft  []string
	Event           string
	OtherJobSurvive bool
}

// Reap is what namespace-reaper did.
type Reap struct {
	Idle, Active string
	IdleDeleted  bool
	ActiveKept   bool
	Event        string
}

// New prepares a run.
func New(o Options) *Story {
	if o.Out == nil {
		o.Out = os.Stdout
	}
	return &Story{opts: o, p: NewPrinter(o.Out), args: map[string][]string{}}
}

// Run runs every step in order and prints the summary.
func (s *Story) Run(ctx context.Context) error {
	steps := []struct {
		title string
		fn    func(context.Context) error
	}{
		{"Local control plane and LDAP", s.Start},
		{"Install the umbrella chart (policies, RBAC; ValidatingAdmissionPolicy engine)", s.Install},
		{"ldap-configmap syncs the directory", s.SyncLDAP},
		{"Users log in: namespace-bootstrap", s.Login},
		{"Admission: pods as the user", s.Admission},
		{"Walltime: job-pod-reaper", s.Walltime},
		{"Idle namespaces: namespace-reaper", s.IdleNamespaces},
	}
	for _, st := range steps {
		s.p.Section(st.title)
		if err := st.fn(ctx); err != nil {
			s.p.Fail("%v", err)
			return fmt.Errorf("%s: %w", st.title, err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	s.Summary()
	return nil
}

// Start starts the control plane (with the controller-manager, so namespaces
// really go away) and slapd with the seed directory.
func (s *Story) Start(ctx context.Context) error {
	var err error
	if s.dir, err = os.MkdirTemp("", "kubehpc-demo-"); err != nil {
		return fmt.Errorf("create work dir: %w", err)
	}
	for _, t := range toolNames() {
		if _, err := os.Stat(filepath.Join(s.opts.Bin, t)); err != nil {
			return fmt.Errorf("tool binary %s: %w (run make build)", t, err)
		}
	}
	s.p.Progress("starting etcd, kube-apiserver and kube-controller-manager (the first run builds them: ~12 minutes)")
	s.env, err = testenv.Start(ctx, testenv.Options{
		Kube: true, KubeOptions: testenv.KubeOptions{ControllerManager: true, Tokens: []testenv.Token{
			{Token: "bob-token", User: "bob", Groups: []string{"ood-users"}},
			{Token: "mallory-token", User: "mallory"},
		}},
		LDAP: true,
	})
	if err != nil {
		return err
	}
	s.Results.StartKube, s.Results.StartLDAP = s.env.Kube.StartupTime, s.env.LDAP.StartupTime
	s.p.OK("control plane ready in %v at %s (no kubelet: pods stay Pending)", s.env.Kube.StartupTime.Round(time.Millisecond), s.env.Kube.Host)
	s.p.OK("slapd ready in %v at %s (seed: alice, bob, john.smith, carol, dave)", s.env.LDAP.StartupTime.Round(time.Millisecond), s.env.LDAP.URL)
	s.p.Line("kubectl: export KUBECONFIG=%s", s.env.Kube.KubeconfigPath)
	return nil
}

// Stop stops every tool and server and removes what the run wrote.
func (s *Story) Stop() {
	for _, t := range s.procs {
		t.stop()
	}
	s.env.Stop()
	if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// KubeconfigPath is the admin kubeconfig while the story runs.
func (s *Story) KubeconfigPath() string {
	if s.env == nil || s.env.Kube == nil {
		return ""
	}
	return s.env.Kube.KubeconfigPath
}

func toolNames() []string {
	return []string{"ldap-configmap", "job-pod-reaper", "namespace-reaper", "namespace-bootstrap"}
}

var errStep = errors.New("step failed")
