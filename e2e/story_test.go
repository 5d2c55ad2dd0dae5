package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubehpc/kubehpc/e2e/story"
	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// buildTools builds the four tools as an image build does (GOWORK=off).
func buildTools(t *testing.T, root string) string {
	t.Helper()
	bin := t.TempDir()
	for _, name := range []string{"ldap-configmap", "job-pod-reaper", "namespace-reaper", "namespace-bootstrap"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, name), ".")
		cmd.Dir = filepath.Join(root, name)
		cmd.Env = append(os.Environ(), "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", name, err, out)
		}
	}
	return bin
}

// TestStory runs the demo's story end to end and asserts every step: the
// chart installs, the maps and namespace identity match the directory, hook
// and service logins work and bad tokens are refused, the policies admit the
// right pod and reject the attacks, the walltime is enforced with the job's
// companions, and the idle namespace goes while the active one stays.
func TestStory(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildTools(t, root)
	var out bytes.Buffer
	s := story.New(story.Options{Root: root, Bin: bin, Out: &out})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	runErr := s.Run(ctx)
	kubeconfig := s.KubeconfigPath()
	s.Stop()
	t.Log("\n" + out.String())
	if runErr != nil {
		t.Fatalf("story: %v", runErr)
	}
	r := s.Results

	t.Run("maps", func(t *testing.T) {
		want := map[string]map[string]string{
			"user-uid-map":    {"user-alice": "10001", "user-john-smith": "10003", "user-carol": "10004"},
			"user-gid-map":    {"user-alice": "10001", "user-bob": "10002"},
			"user-gids-map":   {"user-alice": `["10001","20001","20100"]`, "user-john-smith": `["10003","20002","20100"]`},
			"user-groups-map": {"user-alice": `["alice","hpcusers","pzs0001"]`, "user-dave": `["dave","hpcusers"]`},
		}
		for cm, keys := range want {
			for k, v := range keys {
				if got := r.Maps[cm][k]; got != v {
					t.Errorf("%s[%s] = %q, want %q", cm, k, got, v)
				}
			}
		}
		if n := len(r.Maps["user-uid-map"]); n != 5 {
			t.Errorf("user-uid-map has %d users, want the 5 of the directory", n)
		}
	})

	t.Run("logins", func(t *testing.T) {
		ok := map[string]bool{}
		for _, l := range r.Logins {
			if l.Err == nil {
				ok[l.Mode+":"+l.User] = true
			} else if l.User == "no token" && !strings.Contains(l.Err.Error(), "HTTP 401") {
				t.Errorf("login without a token: %v, want HTTP 401", l.Err)
			} else if strings.HasPrefix(l.User, "mallory") && !strings.Contains(l.Err.Error(), "HTTP 403") {
				t.Errorf("login of a user outside LDAP: %v, want HTTP 403", l.Err)
			}
		}
		for _, want := range []string{"hook:alice", "hook:john.smith", "hook:dave", "service:bob"} {
			if !ok[want] {
				t.Errorf("login %s did not succeed; logins: %+v", want, r.Logins)
			}
		}
		if ok["service:mallory (not in LDAP)"] || ok["service:no token"] {
			t.Errorf("a bad token was accepted: %+v", r.Logins)
		}
		alice := r.Identity["user-alice"]
		if alice[identity.UIDAnnotation] != "10001" || alice[identity.GIDsAnnotation] != ",10001,20001,20100," ||
			alice[identity.GroupsAnnotation] != ",alice,hpcusers,pzs0001," || alice[identity.LastHookExecutionAnnotation] == "" {
			t.Errorf("user-alice identity after login = %v", alice)
		}
		if got := r.Identity["user-john-smith"][identity.UserAnnotation]; got != "john.smith" {
			t.Errorf("user-john-smith user annotation = %q, want john.smith", got)
		}
		if got := r.Identity["user-bob"][identity.UIDAnnotation]; got != "10002" {
			t.Errorf("user-bob (service mode) uid annotation = %q, want 10002", got)
		}
	})

	t.Run("admission", func(t *testing.T) {
		want := map[string]string{
			"well-formed pod of alice":           "",
			"runs as bob's UID 10002":            "runAsUser must be 10001",
			"charges account pzs0002 (not hers)": "account pzs0002 is not one of the LDAP groups of alice",
			"privileged container":               "privileged",
			"mounts hostPath /etc":               "not allowed: /etc",
		}
		if len(r.Admission) != len(want) {
			t.Fatalf("admission attempts = %d, want %d", len(r.Admission), len(want))
		}
		for _, a := range r.Admission {
			msg, ok := want[a.Name]
			if !ok {
				t.Errorf("unexpected attempt %q", a.Name)
				continue
			}
			if a.Allowed != (msg == "") {
				t.Errorf("%s: allowed = %v, want %v (%s)", a.Name, a.Allowed, msg == "", a.Message)
			}
			if msg != "" && !strings.Contains(a.Message, msg) {
				t.Errorf("%s: message %q lacks %q", a.Name, a.Message, msg)
			}
		}
	})

	t.Run("walltime", func(t *testing.T) {
		w := r.Walltime
		if !w.Deleted {
			t.Fatal("the expired pod was not deleted")
		}
		// creationTimestamp has 1 s resolution, so the deletion may be seen up to 1 s "early".
		if w.DeletedAfter < -time.Second || w.DeletedAfter > 5*time.Second {
			t.Errorf("pod deleted %v after its walltime, want within a few seconds", w.DeletedAfter)
		}
		if len(w.CompanionsGone) != 3 || len(w.CompanionsLeft) != 0 {
			t.Errorf("companions gone %v, left %v; want the Service, ConfigMap and Secret gone", w.CompanionsGone, w.CompanionsLeft)
		}
		if !w.OtherJobSurvive {
			t.Error("the other job was touched")
		}
		if !strings.Contains(w.Event, "walltime of 5s exceeded") {
			t.Errorf("Event = %q, want one saying the walltime of 5s was exceeded", w.Event)
		}
	})

	t.Run("namespace reaper", func(t *testing.T) {
		if !r.Reap.IdleDeleted || !r.Reap.ActiveKept {
			t.Errorf("reap = %+v, want the idle namespace deleted and the active one kept", r.Reap)
		}
	})

	t.Run("nothing left behind", func(t *testing.T) {
		if _, err := os.Stat(filepath.Dir(kubeconfig)); !os.IsNotExist(err) {
			t.Errorf("control plane directory %s still exists after Stop (err %v)", filepath.Dir(kubeconfig), err)
		}
		if !strings.Contains(out.String(), "== 8. Summary") {
			t.Error("no summary printed")
		}
	})
}
