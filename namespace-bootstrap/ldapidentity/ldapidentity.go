// Package ldapidentity looks up one user's POSIX identity in LDAP at login
// and renders it as the namespace identity annotations (pkg/identity), the
// same values ldap-configmap writes, so that a new user is not locked out
// until the next sync.
package ldapidentity

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// ErrUserNotFound is returned when the directory has no such user.
var ErrUserNotFound = errors.New("user not found in LDAP")

// Config configures the lookup. An empty URL disables it.
type Config struct {
	URL              string
	BindDN           string
	BindPasswordFile string
	StartTLS         bool
	CAFile           string
	UserBaseDN       string
	// UserFilter has one %s for the escaped username.
	UserFilter  string
	GroupBaseDN string
	// GroupFilter has one %s for the escaped username (memberUid).
	GroupFilter string
	Timeout     time.Duration
}

// AddFlags registers the --ldap-* flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	if c.UserFilter == "" {
		c.UserFilter = "(&(objectClass=posixAccount)(uid=%s))"
	}
	if c.GroupFilter == "" {
		c.GroupFilter = "(&(objectClass=posixGroup)(memberUid=%s))"
	}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	fs.StringVar(&c.URL, "ldap-url", c.URL, "LDAP server for the user's identity at login (ldap:// or ldaps://); empty disables the lookup and the identity annotations")
	fs.StringVar(&c.BindDN, "ldap-bind-dn", c.BindDN, "DN to bind as; empty binds anonymously")
	fs.StringVar(&c.BindPasswordFile, "ldap-bind-password-file", c.BindPasswordFile, "File holding the bind password")
	fs.BoolVar(&c.StartTLS, "ldap-start-tls", c.StartTLS, "Use StartTLS on an ldap:// URL")
	fs.StringVar(&c.CAFile, "ldap-ca-file", c.CAFile, "PEM CA bundle to verify the LDAP server; empty uses the system roots")
	fs.StringVar(&c.UserBaseDN, "ldap-user-base-dn", c.UserBaseDN, "Base DN of user entries (posixAccount)")
	fs.StringVar(&c.UserFilter, "ldap-user-filter", c.UserFilter, "Filter finding one user; %s is the escaped username")
	fs.StringVar(&c.GroupBaseDN, "ldap-group-base-dn", c.GroupBaseDN, "Base DN of group entries (posixGroup)")
	fs.StringVar(&c.GroupFilter, "ldap-group-filter", c.GroupFilter, "Filter finding the user's groups; %s is the escaped username")
	fs.DurationVar(&c.Timeout, "ldap-timeout", c.Timeout, "Timeout of each LDAP operation")
}

// Validate checks the flags.
func (c *Config) Validate() error {
	if c.URL == "" {
		return nil
	}
	var errs []error
	if !strings.HasPrefix(c.URL, "ldap://") && !strings.HasPrefix(c.URL, "ldaps://") {
		errs = append(errs, fmt.Errorf("--ldap-url %q: want ldap:// or ldaps://", c.URL))
	}
	if c.UserBaseDN == "" {
		errs = append(errs, errors.New("--ldap-user-base-dn is required with --ldap-url"))
	}
	if c.GroupBaseDN == "" {
		errs = append(errs, errors.New("--ldap-group-base-dn is required with --ldap-url"))
	}
	for flag, f := range map[string]string{"--ldap-user-filter": c.UserFilter, "--ldap-group-filter": c.GroupFilter} {
		if strings.Count(f, "%s") != 1 {
			errs = append(errs, fmt.Errorf("%s %q must contain %%s exactly once", flag, f))
		}
	}
	if c.Timeout <= 0 {
		errs = append(errs, fmt.Errorf("--ldap-timeout must be positive, got %v", c.Timeout))
	}
	return errors.Join(errs...)
}

// Source looks users up. It dials per lookup: logins are rare and a
// connection per lookup cannot go stale.
type Source struct {
	cfg      Config
	tls      *tls.Config
	password string
}

// New reads the CA and password files.
func New(c Config) (*Source, error) {
	s := &Source{cfg: c, tls: &tls.Config{MinVersion: tls.VersionTLS12}}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read LDAP CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("LDAP CA file %s holds no PEM certificate", c.CAFile)
		}
		s.tls.RootCAs = pool
	}
	if c.BindPasswordFile != "" {
		b, err := os.ReadFile(c.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read LDAP bind password file: %w", err)
		}
		s.password = strings.TrimRight(string(b), "\r\n")
	}
	return s, nil
}

// Lookup returns the identity annotations of username: uid, gid, gids
// (every group's gidNumber and the primary GID, numerically sorted), groups
// (group names, sorted), home and user. A user missing from the directory
// gives ErrUserNotFound.
func (s *Source) Lookup(ctx context.Context, username string) (map[string]string, error) {
	conn, err := ldap.DialURL(s.cfg.URL, ldap.DialWithTLSConfig(s.tls), ldap.DialWithDialer(dialer(ctx, s.cfg.Timeout)))
	if err != nil {
		return nil, fmt.Errorf("dial LDAP %s: %w", s.cfg.URL, err)
	}
	defer conn.Close()
	conn.SetTimeout(s.cfg.Timeout)
	if s.cfg.StartTLS && strings.HasPrefix(s.cfg.URL, "ldap://") {
		if err := conn.StartTLS(s.tls); err != nil {
			return nil, fmt.Errorf("StartTLS to %s: %w", s.cfg.URL, err)
		}
	}
	if s.cfg.BindDN != "" {
		if err := conn.Bind(s.cfg.BindDN, s.password); err != nil {
			return nil, fmt.Errorf("bind to LDAP as %q: %w", s.cfg.BindDN, err)
		}
	}
	esc := ldap.EscapeFilter(username)
	userFilter := fmt.Sprintf(s.cfg.UserFilter, esc)
	res, err := conn.Search(ldap.NewSearchRequest(s.cfg.UserBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 2, int(s.cfg.Timeout.Seconds()), false,
		userFilter, []string{"uidNumber", "gidNumber", "homeDirectory"}, nil))
	if err != nil {
		return nil, fmt.Errorf("search %q under %q: %w", userFilter, s.cfg.UserBaseDN, err)
	}
	switch len(res.Entries) {
	case 0:
		return nil, fmt.Errorf("%w: %q", ErrUserNotFound, username)
	case 1:
	default:
		return nil, fmt.Errorf("search %q under %q: %d entries, want one", userFilter, s.cfg.UserBaseDN, len(res.Entries))
	}
	u := res.Entries[0]
	uid, gid := u.GetAttributeValue("uidNumber"), u.GetAttributeValue("gidNumber")
	if uid == "" || gid == "" {
		return nil, fmt.Errorf("LDAP entry %s has no uidNumber or gidNumber", u.DN)
	}
	groupFilter := fmt.Sprintf(s.cfg.GroupFilter, esc)
	gres, err := conn.SearchWithPaging(ldap.NewSearchRequest(s.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases, 0, int(s.cfg.Timeout.Seconds()), false,
		groupFilter, []string{"cn", "gidNumber"}, nil), 500)
	if err != nil {
		return nil, fmt.Errorf("search %q under %q: %w", groupFilter, s.cfg.GroupBaseDN, err)
	}
	gids := []string{gid}
	var groups []string
	for _, g := range gres.Entries {
		if n := g.GetAttributeValue("gidNumber"); n != "" && !slices.Contains(gids, n) {
			gids = append(gids, n)
		}
		if cn := g.GetAttributeValue("cn"); cn != "" && !slices.Contains(groups, cn) {
			groups = append(groups, cn)
		}
	}
	return Annotations(username, uid, gid, u.GetAttributeValue("homeDirectory"), gids, groups), nil
}

// Annotations renders an identity as the namespace annotations.
func Annotations(user, uid, gid, home string, gids, groups []string) map[string]string {
	gids = slices.Clone(gids)
	identity.SortNumeric(gids)
	groups = slices.Clone(groups)
	slices.Sort(groups)
	a := map[string]string{
		identity.UserAnnotation:   user,
		identity.UIDAnnotation:    uid,
		identity.GIDAnnotation:    gid,
		identity.GIDsAnnotation:   identity.DelimitedList(gids),
		identity.GroupsAnnotation: identity.DelimitedList(groups),
	}
	if home != "" {
		a[identity.HomeAnnotation] = home
	}
	return a
}
