// Package naming maps portal usernames to the names of their Kubernetes
// namespaces. Every tool uses this one function, so a user's namespace has the
// same name in the bootstrap, the ConfigMaps and the reapers.
package naming

import (
	"errors"
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// DefaultPrefix is the namespace prefix Open OnDemand's Kubernetes adapter uses.
const DefaultPrefix = "user-"

// ErrInvalidUsername is wrapped by every error NamespaceForUser returns.
var ErrInvalidUsername = errors.New("invalid username")

// separators are folded into "-" (built once: a full sync maps 50,000 names).
var separators = strings.NewReplacer(".", "-", "@", "-")

// NamespaceForUser returns prefix + username, with the username lower-cased and
// '.' and '@' replaced by '-' (as Open OnDemand's Kubernetes adapter does).
// It never truncates or otherwise alters a name further: a result that is not
// a valid DNS-1123 label is an error, so two users can never share a namespace
// through a silent rewrite.
func NamespaceForUser(prefix, username string) (string, error) {
	if username == "" {
		return "", fmt.Errorf("%w: empty username", ErrInvalidUsername)
	}
	// Only ASCII: Unicode case folding maps some other letters onto ASCII
	// ones (the Kelvin sign lower-cases to "k"), which would give two
	// directory names one namespace; the policies' CEL lower-cases ASCII only.
	for i := 0; i < len(username); i++ {
		if username[i] >= 0x80 {
			return "", fmt.Errorf("%w: username %q is not ASCII", ErrInvalidUsername, username)
		}
	}
	name := prefix + separators.Replace(strings.ToLower(username))
	if errs := validation.IsDNS1123Label(name); len(errs) > 0 {
		return "", fmt.Errorf("%w: username %q gives namespace %q, which is not a valid DNS-1123 label: %s",
			ErrInvalidUsername, username, name, strings.Join(errs, "; "))
	}
	return name, nil
}

// ValidatePrefix reports whether prefix can start a namespace name.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	// A prefix followed by one letter must be a valid label.
	if errs := validation.IsDNS1123Label(prefix + "a"); len(errs) > 0 {
		return fmt.Errorf("namespace prefix %q: %s", prefix, strings.Join(errs, "; "))
	}
	return nil
}
