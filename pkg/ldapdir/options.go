package ldapdir

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
)

// Options are the LDAP flags (with the original k8-ldap-configmap's names),
// shared by ldap-configmap and any tool that looks users up the same way:
// embed Options in a tool's config, call AddFlags and Validate, and Config
// to get the *Config for Open, ReadAll and LookupUser.
type Options struct {
	Preset           string
	URL              string
	StartTLS         bool
	TLSVerify        bool
	CAFile, CACert   string
	ServerName       string
	BindDN           string
	BindPassword     string
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

// AddFlags binds the LDAP flags to o's fields, whose current values
// (NewOptions' defaults) are the flags' defaults.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Preset, "ldap-preset", o.Preset, "Defaults for filters, attribute names and member scheme: rfc2307, rfc2307bis or ad (empty: the original tool's defaults)")
	fs.StringVar(&o.URL, "ldap-url", o.URL, "LDAP server URL, ldap://host:port or ldaps://host:port")
	fs.BoolVar(&o.StartTLS, "ldap-tls", o.StartTLS, "Use StartTLS on an ldap:// URL")
	fs.BoolVar(&o.TLSVerify, "ldap-tls-verify", o.TLSVerify, "Verify the server certificate (ldaps and StartTLS); false is for tests only")
	fs.StringVar(&o.CAFile, "ldap-tls-ca-file", o.CAFile, "PEM file of CA certificates trusted for ldaps and StartTLS")
	fs.StringVar(&o.CACert, "ldap-tls-ca-cert", o.CACert, "PEM contents of CA certificates trusted for ldaps and StartTLS")
	fs.StringVar(&o.ServerName, "ldap-tls-server-name", o.ServerName, "Name to verify in the server certificate (default: the URL's host)")
	fs.StringVar(&o.BindDN, "ldap-bind-dn", o.BindDN, "DN for a simple bind; empty binds anonymously")
	fs.StringVar(&o.BindPassword, "ldap-bind-password", o.BindPassword, "Bind password (prefer --ldap-bind-password-file or the environment)")
	fs.StringVar(&o.BindPasswordFile, "ldap-bind-password-file", o.BindPasswordFile, "File holding the bind password (a mounted Secret), read at every pass")
	fs.DurationVar(&o.ConnectTimeout, "ldap-connect-timeout", o.ConnectTimeout, "Timeout for connecting and TLS")
	fs.DurationVar(&o.Timeout, "ldap-timeout", o.Timeout, "Timeout for each LDAP operation (each page of a search)")
	fs.BoolVar(&o.Paged, "ldap-paged-search", o.Paged, "Use paged searches (RFC 2696), needed above a server's size limit (Active Directory: 1000)")
	fs.IntVar(&o.PageSize, "ldap-paged-search-size", o.PageSize, "Page size of paged searches")
	fs.StringVar(&o.UserBaseDN, "ldap-user-base-dn", o.UserBaseDN, "Base DN of the user search (subtree)")
	fs.StringVar(&o.GroupBaseDN, "ldap-group-base-dn", o.GroupBaseDN, "Base DN of the group search (subtree)")
	fs.StringVar(&o.UserFilter, "ldap-user-filter", o.UserFilter, "User filter (default from the preset: (objectClass=posixAccount))")
	fs.StringVar(&o.GroupFilter, "ldap-group-filter", o.GroupFilter, "Group filter (default from the preset: (objectClass=posixGroup))")
	fs.StringVar(&o.Scheme, "ldap-member-scheme", o.Scheme, "Membership: memberof (memberOf on users), member (member DNs on groups) or memberuid (memberUid on groups); default from the preset: memberof")
	fs.BoolVar(&o.Nested, "ldap-nested-groups", o.Nested, "Resolve groups that are members of groups (member and memberof schemes), cycles included")
	fs.StringVar(&o.UserAttrMap, "ldap-user-attr-map", o.UserAttrMap, "User attributes as key=attribute for keys name, uid, gid, home (over the preset: name=uid,uid=uidNumber,gid=gidNumber,home=homeDirectory)")
	fs.StringVar(&o.GroupAttrMap, "ldap-group-attr-map", o.GroupAttrMap, "Group attributes as key=attribute for keys name, gid (over the preset: name=cn,gid=gidNumber)")
}

// NewOptions returns Options with their defaults, as the flags show them.
func NewOptions() Options {
	return Options{ConnectTimeout: 10 * time.Second, Timeout: time.Minute, PageSize: 500, TLSVerify: true, Paged: true, Nested: true}
}

// Validate checks the options without reading any file.
func (o *Options) Validate() error {
	var errs []error
	if _, err := o.Config(false); err != nil {
		errs = append(errs, err)
	}
	if o.PageSize < 1 || o.PageSize > 1<<31-1 {
		errs = append(errs, fmt.Errorf("--ldap-paged-search-size %d: want a positive number", o.PageSize))
	}
	if o.BindPassword != "" && o.BindPasswordFile != "" {
		errs = append(errs, errors.New("set --ldap-bind-password or --ldap-bind-password-file, not both"))
	}
	return errors.Join(errs...)
}

// Config builds the LDAP configuration; readSecrets reads the password
// file (call it at each use, so a rotated Secret is picked up).
func (o *Options) Config(readSecrets bool) (*Config, error) {
	d, err := Preset(o.Preset)
	if err != nil {
		return nil, fmt.Errorf("--ldap-preset: %w", err)
	}
	var errs []error
	d.URL, d.StartTLS, d.InsecureSkipVerify = o.URL, o.StartTLS, !o.TLSVerify
	d.CAFile, d.CAPEM, d.ServerName = o.CAFile, o.CACert, o.ServerName
	d.BindDN, d.BindPassword = o.BindDN, o.BindPassword
	if o.BindPasswordFile != "" {
		d.BindPassword = "(from file)"
		if readSecrets {
			b, err := os.ReadFile(o.BindPasswordFile)
			if err != nil {
				return nil, fmt.Errorf("read the LDAP bind password: %w", err)
			}
			d.BindPassword = strings.TrimRight(string(b), "\r\n")
		}
	}
	d.ConnectTimeout, d.Timeout = o.ConnectTimeout, o.Timeout
	d.Paged, d.PageSize = o.Paged, uint32(max(o.PageSize, 0)) //nolint:gosec // validated
	d.UserBaseDN, d.GroupBaseDN = o.UserBaseDN, o.GroupBaseDN
	if o.UserFilter != "" {
		d.UserFilter = o.UserFilter
	}
	if o.GroupFilter != "" {
		d.GroupFilter = o.GroupFilter
	}
	if o.Scheme != "" {
		d.Scheme = strings.ToLower(o.Scheme)
	}
	d.Nested = o.Nested
	if d.UserAttrs, err = ParseUserAttrs(o.UserAttrMap, d.UserAttrs); err != nil {
		errs = append(errs, fmt.Errorf("--ldap-user-attr-map: %w", err))
	}
	if d.GroupAttrs, err = ParseGroupAttrs(o.GroupAttrMap, d.GroupAttrs); err != nil {
		errs = append(errs, fmt.Errorf("--ldap-group-attr-map: %w", err))
	}
	if err := d.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &d, nil
}
