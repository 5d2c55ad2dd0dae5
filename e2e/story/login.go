package story

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// Login bootstraps alice, john.smith and dave with the portal's pre-hook
// (hook mode), and bob through the HTTPS service with his own token (service
// mode), where a token of a user outside LDAP and no token are refused.
func (s *Story) Login(ctx context.Context) error {
	for _, user := range []string{"alice", "john.smith", "dave"} {
		l := Login{User: user, Mode: "hook"}
		_, l.Err = s.runOnce(ctx, "namespace-bootstrap", "--user="+user, "--listen-address=")
		s.Results.Logins = append(s.Results.Logins, l)
		if l.Err != nil {
			return l.Err
		}
		s.p.OK("namespace-bootstrap --user %s (hook mode)", user)
	}
	// Service mode.
	ca, err := testenv.NewCA("demo")
	if err != nil {
		return err
	}
	_, certFile, keyFile, err := ca.WriteFiles(s.dir, "namespace-bootstrap")
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	svc, err := s.start(ctx, "namespace-bootstrap", "--listen-address="+hostPort(port), "--tls-cert-file="+certFile, "--tls-key-file="+keyFile)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}}}
	url := "https://" + hostPort(port) + "/bootstrap"
	post := func(token string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
		if err != nil {
			return 0, "", err
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b)), nil
	}
	if err := testenv.Poll(ctx, pollInterval, 30*time.Second, func() (bool, error) {
		if svc.exited() {
			return false, testenv.Final(fmt.Errorf("the service exited: %v\n%s", svc.err, tailLines(svc.out.String(), 15)))
		}
		_, _, err := post("")
		return err == nil, nil
	}); err != nil {
		return fmt.Errorf("namespace-bootstrap service on %s: %w", url, err)
	}
	for _, c := range []struct{ who, token string }{{"no token", ""}, {"mallory (not in LDAP)", "mallory-token"}} {
		code, body, err := post(c.token)
		if err != nil {
			return err
		}
		s.Results.Logins = append(s.Results.Logins, Login{User: c.who, Mode: "service", Err: fmt.Errorf("HTTP %d: %s", code, body)})
		s.p.Denied("POST /bootstrap as %s: HTTP %d %s", c.who, code, body)
	}
	code, body, err := post("bob-token")
	if err != nil {
		return err
	}
	l := Login{User: "bob", Mode: "service"}
	if code != http.StatusOK {
		l.Err = fmt.Errorf("HTTP %d: %s", code, body)
		s.Results.Logins = append(s.Results.Logins, l)
		return fmt.Errorf("bob's login through the service: %w", l.Err)
	}
	s.Results.Logins = append(s.Results.Logins, l)
	s.p.OK("POST /bootstrap with bob's own token (service mode): HTTP 200 %s", body)

	// What a login leaves on the namespace.
	s.Results.Identity = map[string]map[string]string{}
	var rows [][]string
	for _, ns := range []string{"user-alice", "user-bob", "user-john-smith", "user-dave"} {
		n, err := s.env.Kube.Client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return fmt.Errorf("namespace %s after login: %w", ns, err)
		}
		a := map[string]string{}
		for _, k := range append(identity.IdentityAnnotations(), identity.LastHookExecutionAnnotation) {
			a[k] = n.Annotations[k]
		}
		s.Results.Identity[ns] = a
		rows = append(rows, []string{ns, a[identity.UserAnnotation], a[identity.UIDAnnotation], a[identity.GIDsAnnotation], a[identity.GroupsAnnotation], age(a[identity.LastHookExecutionAnnotation])})
		for i := range s.Results.Logins {
			if s.Results.Logins[i].Err == nil && "user-"+strings.NewReplacer(".", "-").Replace(s.Results.Logins[i].User) == ns {
				s.Results.Logins[i].Namespace = ns
			}
		}
	}
	s.p.Table([]string{"namespace", "user", "uid", "gids", "groups", "last login"}, rows)
	rbs, err := s.env.Kube.Client.RbacV1().RoleBindings("user-alice").List(ctx, metav1.ListOptions{})
	if err == nil {
		var names []string
		for _, rb := range rbs.Items {
			names = append(names, rb.Name+"→"+rb.RoleRef.Name)
		}
		s.p.Line("RoleBindings in user-alice: %s", strings.Join(names, ", "))
	}
	_ = os.Remove(filepath.Join(s.dir, "namespace-bootstrap.key"))
	return nil
}

func age(unix string) string {
	n, err := strconv.ParseInt(unix, 10, 64)
	if err != nil {
		return unix
	}
	return time.Since(time.Unix(n, 0)).Round(time.Second).String() + " ago"
}
