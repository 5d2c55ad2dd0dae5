// Package ldapidentity looks up one user's identity in LDAP at login and
// renders it as the namespace identity annotations (pkg/identity), so that a
// new user is not locked out until ldap-configmap's next sync. It uses
// ldap-configmap's own directory package (LookupUser), so both tools compute
// the same values by the same rules; its flags have ldap-configmap's names.
package ldapidentity

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/ldap-configmap/directory"
)

// ErrUserNotFound is returned when the directory has no such user (or it is
// filtered out or a bad entry, as in the full sync).
var ErrUserNotFound = directory.ErrNotFound

// Config configures the lookup. An empty URL disables it.
type Config struct {
	Preset           string
	URL              string
	StartTLS         bool
	TLSVerify        bool
	CAFile           string
	ServerName       string
	BindDN           string
	BindPasswordFile string
	ConnectTimeout   time.Duration
	Timeout          time.Duration
	Paged            bool
	PageSize         int
	UserBaseDN       string
	GroupBaseDN      string
	UserFilter       string
	GroupFilter      string
	Scheme           string
	Nested           bool
	UserAttrMap      string
	GroupAttrMap     string
}

// AddFlags registers the --ldap-* flags (ldap-configmap's names and defaults).
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 5 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	c.TLSVerify, c.Paged, c.Nested = true, true, true
	fs.StringVar(&c.URL, "ldap-url", c.URL, "LDAP server for the user's identity at login, ldap://host:port or ldaps://host:port; empty disables the lookup and the identity annotations")
	fs.StringVar(&c.Preset, "ldap-preset", c.Preset, "Defaults for filters, attribute names and member scheme: rfc2307, rfc2307bis or ad (as ldap-configmap)")
	fs.BoolVar(&c.StartTLS, "ldap-tls", c.StartTLS, "Use StartTLS on an ldap:// URL")
	fs.BoolVar(&c.TLSVerify, "ldap-tls-verify", c.TLSVerify, "Verify the server certificate; false is for tests only")
	fs.StringVar(&c.CAFile, "ldap-tls-ca-file", c.CAFile, "PEM file of CA certificates trusted for ldaps and StartTLS")
	fs.StringVar(&c.ServerName, "ldap-tls-server-name", c.ServerName, "Name to verify in the server certificate (default: the URL's host)")
	fs.StringVar(&c.BindDN, "ldap-bind-dn", c.BindDN, "DN for a simple bind; empty binds anonymously")
	fs.StringVar(&c.BindPasswordFile, "ldap-bind-password-file", c.BindPasswordFile, "File holding the bind password (a mounted Secret), read at each lookup")
	fs.DurationVar(&c.ConnectTimeout, "ldap-connect-timeout", c.ConnectTimeout, "Timeout for connecting and TLS")
	fs.DurationVar(&c.Timeout, "ldap-timeout", c.Timeout, "Timeout for each LDAP operation")
	fs.BoolVar(&c.Paged, "ldap-paged-search", c.Paged, "Use paged searches (RFC 2696)")
	fs.IntVar(&c.PageSize, "ldap-paged-search-size", c.PageSize, "Page size of paged searches")
	fs.StringVar(&c.UserBaseDN, "ldap-user-base-dn", c.UserBaseDN, "Base DN of the user search (subtree)")
	fs.StringVar(&c.GroupBaseDN, "ldap-group-base-dn", c.GroupBaseDN, "Base DN of the group search (subtree)")
	fs.StringVar(&c.UserFilter, "ldap-user-filter", c.UserFilter, "User filter (default from the preset)")
	fs.StringVar(&c.GroupFilter, "ldap-group-filter", c.GroupFilter, "Group filter (default from the preset)")
	fs.StringVar(&c.Scheme, "ldap-member-scheme", c.Scheme, "Membership: memberof, member or memberuid (default from the preset)")
	fs.BoolVar(&c.Nested, "ldap-nested-groups", c.Nested, "Resolve groups that are members of groups")
	fs.StringVar(&c.UserAttrMap, "ldap-user-attr-map", c.UserAttrMap, "User attributes as key=attribute for keys name, uid, gid, home (over the preset)")
	fs.StringVar(&c.GroupAttrMap, "ldap-group-attr-map", c.GroupAttrMap, "Group attributes as key=attribute for keys name, gid (over the preset)")
}

// Validate checks the flags (an empty --ldap-url is valid: no lookup).
func (c *Config) Validate() error {
	if c.URL == "" {
		return nil
	}
	_, err := c.directory("")
	return err
}

// directory builds ldap-configmap's configuration with the given password.
func (c *Config) directory(password string) (*directory.Config, error) {
	d, err := directory.Preset(c.Preset)
	if err != nil {
		return nil, fmt.Errorf("--ldap-preset: %w", err)
	}
	var errs []error
	d.URL, d.StartTLS, d.InsecureSkipVerify, d.CAFile, d.ServerName = c.URL, c.StartTLS, !c.TLSVerify, c.CAFile, c.ServerName
	d.BindDN, d.BindPassword = c.BindDN, password
	if c.BindDN != "" && password == "" {
		d.BindPassword = "(from file)" // validated before the file is read
		if c.BindPasswordFile == "" {
			errs = append(errs, errors.New("--ldap-bind-dn needs --ldap-bind-password-file"))
		}
	}
	d.ConnectTimeout, d.Timeout = c.ConnectTimeout, c.Timeout
	d.Paged, d.PageSize = c.Paged, uint32(max(c.PageSize, 0)) //nolint:gosec // checked below
	if c.PageSize < 1 {
		errs = append(errs, fmt.Errorf("--ldap-paged-search-size %d: want a positive number", c.PageSize))
	}
	d.UserBaseDN, d.GroupBaseDN = c.UserBaseDN, c.GroupBaseDN
	if c.UserFilter != "" {
		d.UserFilter = c.UserFilter
	}
	if c.GroupFilter != "" {
		d.GroupFilter = c.GroupFilter
	}
	if c.Scheme != "" {
		d.Scheme = strings.ToLower(c.Scheme)
	}
	d.Nested = c.Nested
	if d.UserAttrs, err = directory.ParseUserAttrs(c.UserAttrMap, d.UserAttrs); err != nil {
		errs = append(errs, fmt.Errorf("--ldap-user-attr-map: %w", err))
	}
	if d.GroupAttrs, err = directory.ParseGroupAttrs(c.GroupAttrMap, d.GroupAttrs); err != nil {
		errs = append(errs, fmt.Errorf("--ldap-group-attr-map: %w", err))
	}
	if err := d.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("LDAP: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &d, nil
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
	password := ""
	if s.cfg.BindPasswordFile != "" {
		b, err := os.ReadFile(s.cfg.BindPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read the LDAP bind password: %w", err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	d, err := s.cfg.directory(password)
	if err != nil {
		return nil, err
	}
	id, err := directory.LookupUser(ctx, d, s.prefix, username)
	if err != nil {
		return nil, err
	}
	return directory.Annotations(id), nil
}
