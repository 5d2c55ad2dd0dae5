// Package ldapidentity looks up one user's identity in LDAP at login and
// renders it as the namespace identity annotations (pkg/identity), so that a
// new user is not locked out until ldap-configmap's next sync. It uses
// ldap-configmap's own directory package (LookupUser), so both tools compute
// the same values by the same rules; its flags have ldap-configmap's names.
package ldapidentity

import (
	"context"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/ldap-configmap/directory"
)

// ErrUserNotFound is returned when the directory has no such user (or it is
// filtered out or a bad entry, as in the full sync).
var ErrUserNotFound = directory.ErrNotFound

// Config configures the lookup: ldap-configmap's own LDAP options and
// flags (one definition for both tools), with shorter timeouts, since a user
// waits at login. An empty URL disables the lookup.
type Config struct {
	directory.Options
}

// AddFlags registers the --ldap-* and --mappers-*-filter flags
// (ldap-configmap's names; the per-mapper filters pick the same user and
// groups as the full sync does).
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
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
	id, err := directory.LookupUser(ctx, d, s.prefix, username)
	if err != nil {
		return nil, err
	}
	return directory.Annotations(id), nil
}
