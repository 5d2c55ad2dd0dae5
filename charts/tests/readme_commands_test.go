package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestREADMECommands renders the umbrella with the --set flags of every
// helm install/upgrade command in its README (the site install and the
// engine switches), so the documented commands stay valid.
func TestREADMECommands(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(umbrella(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var cmds []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && !strings.HasPrefix(line, "helm install kubehpc charts/kubehpc") && !strings.HasPrefix(line, "helm upgrade kubehpc charts/kubehpc") {
			continue
		}
		cur.WriteString(strings.TrimSuffix(line, "\\") + " ")
		if !strings.HasSuffix(line, "\\") {
			cmds = append(cmds, cur.String())
			cur.Reset()
		}
	}
	if len(cmds) < 4 {
		t.Fatalf("found %d helm commands in the README, want at least 4", len(cmds))
	}
	for _, c := range cmds {
		words := shellWords(c)
		args := []string{"template", "kubehpc", umbrella(t)}
		for i := 0; i < len(words); i++ {
			if words[i] == "--set" && i+1 < len(words) {
				args = append(args, "--set", words[i+1])
				i++
			}
		}
		out, err := helm(t, args...)
		if err != nil {
			t.Errorf("README command %q: %v", c, err)
		}
		if strings.Contains(c, "bindDN") && !strings.Contains(out, `"--ldap-bind-dn=cn=kubehpc,ou=services,dc=example,dc=edu"`) {
			t.Errorf("README install command: the bind DN does not reach ldap-configmap whole")
		}
	}
}

// shellWords splits a command line on spaces, honouring single quotes.
func shellWords(s string) []string {
	var out []string
	var w strings.Builder
	quoted, in := false, false
	for _, r := range s {
		switch {
		case r == '\'':
			quoted, in = !quoted, true
		case r == ' ' && !quoted:
			if in {
				out = append(out, w.String())
				w.Reset()
				in = false
			}
		default:
			w.WriteRune(r)
			in = true
		}
	}
	if in {
		out = append(out, w.String())
	}
	return out
}
