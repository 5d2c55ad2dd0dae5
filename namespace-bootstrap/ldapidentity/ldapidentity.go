// Package ldapidentity looks up one user's identity in LDAP at login and
// renders it as the namespace identity annotations (pkg/identity), so that a
// new user is not locked out until ldap-configmap's next sync. It uses the
// LDAP package ldap-configmap reads the directory with (pkg/ldapdir,
// LookupUser), so both tools compute the same values by the same rules; its
// --ldap-* flags have ldap-configmap's names.
package ldapidentity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/ldapdir"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

var (
	// ErrUserNotFound is returned when the directory has no such user (or it
	// is filtered out or a bad entry, as in the full sync).
	ErrUserNotFound = ldapdir.ErrNotFound
	// ErrCollision is returned when several directory entries map to the
	// user's namespace (john.smith and john-smith, or Alice and alice).
	ErrCollision = errors.New("several directory entries map to one namespace")
)

// Config configures the lookup: the LDAP options and flags ldap-configmap
// uses too (one definition for both tools), with shorter timeouts, since a
// user waits at login. An empty URL disables the lookup. The lookup uses the
// global --ldap-user-filter and --ldap-group-filter for every part of the
// identity (ldap-configmap's per-mapper filters are its own).
type Config struct {
	ldapdir.Options
}

// NewConfig returns the configuration with its defaults: ldap-configmap's,
// with the shorter timeouts.
func NewConfig() Config {
	c := Config{Options: ldapdir.NewOptions()}
	c.ConnectTimeout, c.Timeout = 5*time.Second, 10*time.Second
	return c
}

// AddFlags registers the --ldap-* flags (ldap-configmap's names), whose
// defaults are c's current values (NewConfig's).
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.Options.AddFlags(fs)
	fs.Lookup("ldap-url").Usage = "LDAP server for the user's identity at login, ldap://host:port or ldaps://host:port; empty disables the lookup and the identity annotations"
}

// Validate checks the flags (an empty --ldap-url is valid: no lookup).
func (c *Config) Validate() error {
	if c.URL == "" {
		return nil
	}
	return c.Options.Validate()
}

// Source looks users up, one connection per lookup: logins are rare and a
// connection per lookup cannot go stale.
type Source struct {
	cfg    Config
	prefix string
}

// New returns a Source; prefix is the namespace prefix (the identity's key).
func New(c Config, prefix string) (*Source, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &Source{cfg: c, prefix: prefix}, nil
}

// Lookup returns the identity annotations of username: uid, gid, gids,
// groups, home and user, exactly as ldap-configmap writes them. A user
// missing from the directory gives an error wrapping ErrUserNotFound.
func (s *Source) Lookup(ctx context.Context, username string) (map[string]string, error) {
	d, err := s.cfg.Config(true) // reads the password file at each lookup
	if err != nil {
		return nil, err
	}
	sess, err := ldapdir.Open(ctx, d)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sess.Close() }()
	if err := s.checkCollision(ctx, sess, d, username); err != nil {
		return nil, err
	}
	id, err := sess.LookupUser(ctx, d.IdentityViews(), s.prefix, username)
	if err != nil {
		return nil, err
	}
	return ldapdir.Annotations(id), nil
}

// checkCollision refuses a user whose namespace another directory entry
// maps to as well: the full sync refuses both, and so must a login, or the
// second user to log in would take the first one's namespace. One search
// finds every candidate: the separators the naming rule folds (".", "@",
// "-") become wildcards, and the name attribute matches without case.
func (s *Source) checkCollision(ctx context.Context, sess *ldapdir.Session, d *ldapdir.Config, username string) error {
	ns, err := naming.NamespaceForUser(s.prefix, username)
	if err != nil {
		return err
	}
	filter := fmt.Sprintf("(&%s(%s=%s))", d.UserFilter, d.UserAttrs.Name, separatorWildcards(username))
	users, err := sess.Users(ctx, filter)
	if err != nil {
		return fmt.Errorf("search %q for entries sharing namespace %s: %w", filter, ns, err)
	}
	var names []string
	for _, u := range users {
		if got, err := naming.NamespaceForUser(s.prefix, u.Name); err == nil && got == ns && !slices.Contains(names, u.Name) {
			names = append(names, u.Name)
		}
	}
	if len(names) > 1 {
		slices.Sort(names)
		return fmt.Errorf("user %q: %w: %s all map to namespace %s", username, ErrCollision, strings.Join(names, ", "), ns)
	}
	return nil
}

// separatorWildcards escapes username for a filter with "*" in place of
// each separator the naming rule folds into "-".
func separatorWildcards(username string) string {
	parts := strings.FieldsFunc(username, func(r rune) bool { return r == '.' || r == '@' || r == '-' })
	for i, p := range parts {
		parts[i] = ldap.EscapeFilter(p)
	}
	if len(parts) == 0 {
		return ldap.EscapeFilter(username)
	}
	return strings.Join(parts, "*")
}
