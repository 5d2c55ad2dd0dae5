package naming

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"
)

func TestNamespaceForUser(t *testing.T) {
	tests := []struct {
		name, prefix, user, want string
		wantErr                  bool
	}{
		{name: "plain", prefix: "user-", user: "alice", want: "user-alice"},
		{name: "upper case", prefix: "user-", user: "Alice", want: "user-alice"},
		{name: "dotted", prefix: "user-", user: "john.smith", want: "user-john-smith"},
		{name: "email", prefix: "user-", user: "jane@osc.edu", want: "user-jane-osc-edu"},
		{name: "digits", prefix: "user-", user: "u12345", want: "user-u12345"},
		{name: "other prefix", prefix: "ood-", user: "bob", want: "ood-bob"},
		{name: "no prefix", prefix: "", user: "bob", want: "bob"},
		{name: "empty", prefix: "user-", user: "", wantErr: true},
		{name: "underscore", prefix: "user-", user: "a_b", wantErr: true},
		{name: "space", prefix: "user-", user: "a b", wantErr: true},
		{name: "trailing dot", prefix: "user-", user: "bob.", wantErr: true},
		{name: "slash", prefix: "user-", user: "../etc", wantErr: true},
		{name: "unicode", prefix: "user-", user: "jürgen", wantErr: true},
		// Unicode lower-cases the Kelvin sign to an ASCII k: "\u212aim" would
		// share user-kim with kim.
		{name: "kelvin sign", prefix: "user-", user: "\u212aim", wantErr: true},
		{name: "dotted capital I", prefix: "user-", user: "\u0130an", wantErr: true},
		{name: "too long", prefix: "user-", user: strings.Repeat("a", 59), wantErr: true},
		{name: "longest", prefix: "user-", user: strings.Repeat("a", 58), want: "user-" + strings.Repeat("a", 58)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NamespaceForUser(tt.prefix, tt.user)
			if (err != nil) != tt.wantErr {
				t.Fatalf("NamespaceForUser(%q, %q) error = %v, wantErr %v", tt.prefix, tt.user, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrInvalidUsername) {
				t.Errorf("NamespaceForUser(%q, %q) error %v does not wrap ErrInvalidUsername", tt.prefix, tt.user, err)
			}
			if got != tt.want {
				t.Errorf("NamespaceForUser(%q, %q) = %q, want %q", tt.prefix, tt.user, got, tt.want)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	for _, p := range []string{"", "user-", "ood-", "u"} {
		if err := ValidatePrefix(p); err != nil {
			t.Errorf("ValidatePrefix(%q) = %v, want nil", p, err)
		}
	}
	for _, p := range []string{"-user", "User-", "user_", strings.Repeat("a", 63)} {
		if err := ValidatePrefix(p); err == nil {
			t.Errorf("ValidatePrefix(%q) = nil, want error", p)
		}
	}
}

// FuzzNamespaceForUser checks the invariants for any input: a result is always
// a valid DNS-1123 label that starts with the prefix, and the mapping is
// exactly lower-casing plus '.'/'@' -> '-' (no truncation).
func FuzzNamespaceForUser(f *testing.F) {
	for _, s := range []string{"alice", "John.Smith", "a@b.c", "", "-", "ÄÖ", strings.Repeat("x", 70)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, user string) {
		got, err := NamespaceForUser(DefaultPrefix, user)
		if err != nil {
			if !errors.Is(err, ErrInvalidUsername) {
				t.Fatalf("error %v does not wrap ErrInvalidUsername", err)
			}
			return
		}
		if errs := validation.IsDNS1123Label(got); len(errs) > 0 {
			t.Fatalf("NamespaceForUser(%q) = %q, not a DNS-1123 label: %v", user, got, errs)
		}
		if !strings.HasPrefix(got, DefaultPrefix) {
			t.Fatalf("NamespaceForUser(%q) = %q, lacks prefix", user, got)
		}
		if utf8.RuneCountInString(got) != len(DefaultPrefix)+utf8.RuneCountInString(user) {
			t.Fatalf("NamespaceForUser(%q) = %q changed the length", user, got)
		}
	})
}
