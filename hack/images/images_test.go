package main

import (
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestValidate(t *testing.T) {
	good := []string{"--version", "v1.2.3", "--revision", "abc", "--created", "1700000000", "ldap-configmap"}
	cases := []struct {
		name string
		args []string
		env  string // SOURCE_DATE_EPOCH
		want string // "" for valid
	}{
		{name: "valid", args: good},
		{name: "created from SOURCE_DATE_EPOCH", env: "1700000000",
			args: []string{"--version", "v1", "--revision", "abc", "ldap-configmap"}},
		{name: "no created", args: []string{"--version", "v1", "--revision", "abc", "ldap-configmap"}, want: "SOURCE_DATE_EPOCH"},
		{name: "created not a number", args: []string{"--version", "v1", "--revision", "abc", "--created", "yesterday", "ldap-configmap"}, want: `--created "yesterday"`},
		{name: "version with a plus", args: []string{"--version", "1.0+build", "--revision", "abc", "--created", "1", "ldap-configmap"}, want: "not a valid image tag"},
		{name: "no revision", args: []string{"--version", "v1", "--created", "1", "ldap-configmap"}, want: "--revision is required"},
		{name: "unknown platform", args: append([]string{"--platforms", "linux/amd64,windows/amd64"}, good...), want: "windows/amd64"},
		{name: "unknown tool", args: append(good[:len(good)-1:len(good)-1], "no-such-tool"), want: `tool "no-such-tool"`},
		{name: "no tool", args: good[:len(good)-1], want: "no TOOL given"},
		{name: "registry with a scheme", args: append([]string{"--registry", "https://registry.example.org"}, good...), want: "--registry"},
		{name: "registry with a trailing slash", args: append([]string{"--registry", "registry.example.org/kubehpc/"}, good...), want: "--registry"},
		{name: "registry with a port and path", args: append([]string{"--registry", "127.0.0.1:5000/kubehpc"}, good...)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("SOURCE_DATE_EPOCH", tc.env)
			var o Options
			fs := o.FlagSet()
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			o.Tools = fs.Args()
			err := o.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestImageDeterministic: the image digest depends on the inputs only, and
// changes with each of them (a timestamp or a byte).
func TestImageDeterministic(t *testing.T) {
	o := Options{Version: "v1", Revision: "abc", Created: 1700000000, Source: "https://example.org/src", Licenses: "NOASSERTION"}
	p := v1.Platform{OS: "linux", Architecture: "arm64"}
	digest := func(o Options, binary string) string {
		t.Helper()
		img, err := newImage(o, "tool", p, []byte(binary), []byte("ca"))
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		return d.String()
	}
	first := digest(o, "binary")
	if again := digest(o, "binary"); again != first {
		t.Errorf("two builds: %s and %s, want equal", first, again)
	}
	later := o
	later.Created++
	if digest(later, "binary") == first {
		t.Error("a later commit time gave the same digest")
	}
	if digest(o, "binarY") == first {
		t.Error("another binary gave the same digest")
	}
}
