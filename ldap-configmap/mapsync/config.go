// Package mapsync is the ldap-configmap pass: it reads users and groups from
// LDAP (package directory), renders one ConfigMap per enabled mapper and,
// optionally, identity annotations on each existing user namespace, and
// writes them with server-side apply, only when they changed and only when
// the safety guards pass.
package mapsync

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kubehpc/kubehpc/ldap-configmap/directory"
	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/daemon"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

// Tool and field manager name.
const (
	ToolName         = "ldap-configmap"
	MetricsNamespace = "k8_ldap_configmap"
	// DefaultNamespace holds the ConfigMaps unless --namespace says otherwise.
	DefaultNamespace = "ldap-configmap"
	// MaxConfigMapBytes is the API server's limit on a ConfigMap's data.
	MaxConfigMapBytes = 1 << 20
)

// EnvAliases are the original k8-ldap-configmap's environment variables.
var EnvAliases = map[string]string{
	"LDAP_URL":               "ldap-url",
	"LDAP_TLS":               "ldap-tls",
	"LDAP_TLS_VERIFY":        "ldap-tls-verify",
	"LDAP_TLS_CA_CERT":       "ldap-tls-ca-cert",
	"LDAP_GROUP_BASE_DN":     "ldap-group-base-dn",
	"LDAP_USER_BASE_DN":      "ldap-user-base-dn",
	"LDAP_BIND_DN":           "ldap-bind-dn",
	"LDAP_BIND_PASSWORD":     "ldap-bind-password",
	"LDAP_GROUP_FILTER":      "ldap-group-filter",
	"LDAP_USER_FILTER":       "ldap-user-filter",
	"LDAP_PAGED_SEARCH":      "ldap-paged-search",
	"LDAP_PAGED_SEARCH_SIZE": "ldap-paged-search-size",
	"LDAP_MEMBER_SCHEME":     "ldap-member-scheme",
	"LDAP_USER_ATTR_MAP":     "ldap-user-attr-map",
	"LDAP_GROUP_ATTR_MAP":    "ldap-group-attr-map",
	"MAPPERS":                "mappers",
	"MAPPERS_GROUP_FILTER":   "mappers-group-filter",
	"MAPPERS_USER_FILTER":    "mappers-user-filter",
	"NAMESPACE":              "namespace",
	"USER_PREFIX":            "user-prefix",
	"INTERVAL":               "interval",
	"INTERLVAL":              "interval", // the original's typo
	"LISTEN_ADDRESS":         "admin-address",
	"LOG_LEVEL":              "log-level",
}

// Config is the tool's configuration; it implements app.Command.
type Config struct {
	Preset             string
	URL                string
	StartTLS           bool
	TLSVerify          bool
	CAFile, CACert     string
	ServerName         string
	BindDN             string
	BindPassword       string
	BindPasswordFile   string
	ConnectTimeout     time.Duration
	Timeout            time.Duration
	Paged              bool
	PageSize           int
	UserBaseDN         string
	GroupBaseDN        string
	UserFilter         string
	GroupFilter        string
	Scheme             string
	Nested             bool
	UserAttrMap        string
	GroupAttrMap       string
	Mappers            []string
	MapperUserFilters  []string
	MapperGroupFilters []string

	Namespace            string
	UserPrefix           string
	NamespaceAnnotations bool
	MaxDropFraction      float64
	AllowEmpty           bool
	AllowLargeDrop       bool
	DryRun               bool
	MaxConfigMapBytes    int
	Workers              int

	// Out receives the dry-run diff; nil means os.Stdout.
	Out io.Writer
}

// AddFlags registers the flags.
func (c *Config) AddFlags(fs *pflag.FlagSet) {
	c.setDefaults()
	fs.StringVar(&c.Preset, "ldap-preset", c.Preset, "Defaults for filters, attribute names and member scheme: rfc2307, rfc2307bis or ad (empty: the original tool's defaults)")
	fs.StringVar(&c.URL, "ldap-url", c.URL, "LDAP server URL, ldap://host:port or ldaps://host:port")
	fs.BoolVar(&c.StartTLS, "ldap-tls", c.StartTLS, "Use StartTLS on an ldap:// URL")
	fs.BoolVar(&c.TLSVerify, "ldap-tls-verify", c.TLSVerify, "Verify the server certificate (ldaps and StartTLS); false is for tests only")
	fs.StringVar(&c.CAFile, "ldap-tls-ca-file", c.CAFile, "PEM file of CA certificates trusted for ldaps and StartTLS")
	fs.StringVar(&c.CACert, "ldap-tls-ca-cert", c.CACert, "PEM contents of CA certificates trusted for ldaps and StartTLS")
	fs.StringVar(&c.ServerName, "ldap-tls-server-name", c.ServerName, "Name to verify in the server certificate (default: the URL's host)")
	fs.StringVar(&c.BindDN, "ldap-bind-dn", c.BindDN, "DN for a simple bind; empty binds anonymously")
	fs.StringVar(&c.BindPassword, "ldap-bind-password", c.BindPassword, "Bind password (prefer --ldap-bind-password-file or the environment)")
	fs.StringVar(&c.BindPasswordFile, "ldap-bind-password-file", c.BindPasswordFile, "File holding the bind password (a mounted Secret), read at every pass")
	fs.DurationVar(&c.ConnectTimeout, "ldap-connect-timeout", c.ConnectTimeout, "Timeout for connecting and TLS")
	fs.DurationVar(&c.Timeout, "ldap-timeout", c.Timeout, "Timeout for each LDAP operation (each page of a search)")
	fs.BoolVar(&c.Paged, "ldap-paged-search", c.Paged, "Use paged searches (RFC 2696), needed above a server's size limit (Active Directory: 1000)")
	fs.IntVar(&c.PageSize, "ldap-paged-search-size", c.PageSize, "Page size of paged searches")
	fs.StringVar(&c.UserBaseDN, "ldap-user-base-dn", c.UserBaseDN, "Base DN of the user search (subtree)")
	fs.StringVar(&c.GroupBaseDN, "ldap-group-base-dn", c.GroupBaseDN, "Base DN of the group search (subtree)")
	fs.StringVar(&c.UserFilter, "ldap-user-filter", c.UserFilter, "User filter (default from the preset: (objectClass=posixAccount))")
	fs.StringVar(&c.GroupFilter, "ldap-group-filter", c.GroupFilter, "Group filter (default from the preset: (objectClass=posixGroup))")
	fs.StringVar(&c.Scheme, "ldap-member-scheme", c.Scheme, "Membership: memberof (memberOf on users), member (member DNs on groups) or memberuid (memberUid on groups); default from the preset: memberof")
	fs.BoolVar(&c.Nested, "ldap-nested-groups", c.Nested, "Resolve groups that are members of groups (member and memberof schemes), cycles included")
	fs.StringVar(&c.UserAttrMap, "ldap-user-attr-map", c.UserAttrMap, "User attributes as key=attribute for keys name, uid, gid, home (over the preset: name=uid,uid=uidNumber,gid=gidNumber,home=homeDirectory)")
	fs.StringVar(&c.GroupAttrMap, "ldap-group-attr-map", c.GroupAttrMap, "Group attributes as key=attribute for keys name, gid (over the preset: name=cn,gid=gidNumber)")
	fs.StringSliceVar(&c.Mappers, "mappers", c.Mappers, "Mappers to run: "+strings.Join(directory.Mappers, ", ")+"; empty for none (annotations only)")
	fs.StringArrayVar(&c.MapperUserFilters, "mappers-user-filter", c.MapperUserFilters, "Per-mapper user filter as mapper=(filter); repeat the flag for several mappers (filters may contain commas)")
	fs.StringArrayVar(&c.MapperGroupFilters, "mappers-group-filter", c.MapperGroupFilters, "Per-mapper group filter as mapper=(filter); repeat the flag for several mappers (filters may contain commas)")
	fs.StringVar(&c.Namespace, "namespace", c.Namespace, "Namespace of the ConfigMaps")
	fs.StringVar(&c.UserPrefix, "user-prefix", c.UserPrefix, "Namespace prefix: keys (and annotated namespaces) are prefix + username, as pkg/naming maps them")
	fs.BoolVar(&c.NamespaceAnnotations, "namespace-annotations", c.NamespaceAnnotations, "Also write identity annotations (kubehpc.io/uid, gid, gids, groups, home, user) on each existing user namespace, and remove them when the user leaves LDAP")
	fs.Float64Var(&c.MaxDropFraction, "max-drop-fraction", c.MaxDropFraction, "Refuse to write when an output would lose more than this fraction of its current users")
	fs.BoolVar(&c.AllowEmpty, "allow-empty", c.AllowEmpty, "Write even when LDAP returned no users (locks every user out)")
	fs.BoolVar(&c.AllowLargeDrop, "allow-large-drop", c.AllowLargeDrop, "Write even when more than --max-drop-fraction of the users would go")
	fs.BoolVar(&c.DryRun, "dry-run", c.DryRun, "Print the changes instead of writing them")
	fs.IntVar(&c.MaxConfigMapBytes, "max-configmap-bytes", c.MaxConfigMapBytes, "Refuse to write a ConfigMap whose data is larger than this (the API server's limit is 1 MiB)")
	fs.IntVar(&c.Workers, "workers", c.Workers, "Concurrent namespace annotation writes (bounded by --kube-api-qps)")
}

func (c *Config) setDefaults() {
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = time.Minute
	}
	if c.PageSize == 0 {
		c.PageSize = 500
	}
	if c.Mappers == nil {
		c.Mappers = []string{directory.MapperUID, directory.MapperGID}
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.UserPrefix == "" {
		c.UserPrefix = naming.DefaultPrefix
	}
	if c.MaxDropFraction == 0 {
		c.MaxDropFraction = 0.1
	}
	if c.MaxConfigMapBytes == 0 {
		c.MaxConfigMapBytes = MaxConfigMapBytes
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	c.TLSVerify = true
	c.Paged = true
	c.Nested = true
}

// NewConfig returns a Config with the defaults AddFlags would set.
func NewConfig() *Config {
	c := &Config{}
	c.setDefaults()
	return c
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if _, err := c.directory(false); err != nil {
		errs = append(errs, err)
	}
	for _, m := range c.Mappers {
		if !slices.Contains(directory.Mappers, m) {
			errs = append(errs, fmt.Errorf("--mappers: unknown mapper %q: want %s", m, strings.Join(directory.Mappers, ", ")))
		}
	}
	if len(c.Mappers) == 0 && !c.NamespaceAnnotations {
		errs = append(errs, errors.New("nothing to do: enable --mappers or --namespace-annotations"))
	}
	if e := validation.IsDNS1123Label(c.Namespace); len(e) > 0 {
		errs = append(errs, fmt.Errorf("--namespace %q: %s", c.Namespace, strings.Join(e, "; ")))
	}
	if err := naming.ValidatePrefix(c.UserPrefix); err != nil {
		errs = append(errs, fmt.Errorf("--user-prefix: %w", err))
	}
	if c.MaxDropFraction < 0 || c.MaxDropFraction > 1 {
		errs = append(errs, fmt.Errorf("--max-drop-fraction %v: want 0 to 1", c.MaxDropFraction))
	}
	if c.MaxConfigMapBytes <= 0 || c.MaxConfigMapBytes > MaxConfigMapBytes {
		errs = append(errs, fmt.Errorf("--max-configmap-bytes %d: want 1 to %d", c.MaxConfigMapBytes, MaxConfigMapBytes))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("--workers %d: want at least 1", c.Workers))
	}
	if c.PageSize < 1 || c.PageSize > 1<<31-1 {
		errs = append(errs, fmt.Errorf("--ldap-paged-search-size %d: want a positive number", c.PageSize))
	}
	if c.BindPassword != "" && c.BindPasswordFile != "" {
		errs = append(errs, errors.New("set --ldap-bind-password or --ldap-bind-password-file, not both"))
	}
	return errors.Join(errs...)
}

// directory builds the LDAP configuration; readSecrets reads the password
// file (at each pass, so a rotated Secret is picked up).
func (c *Config) directory(readSecrets bool) (*directory.Config, error) {
	d, err := directory.Preset(c.Preset)
	if err != nil {
		return nil, fmt.Errorf("--ldap-preset: %w", err)
	}
	var errs []error
	d.URL, d.StartTLS, d.InsecureSkipVerify = c.URL, c.StartTLS, !c.TLSVerify
	d.CAFile, d.CAPEM, d.ServerName = c.CAFile, c.CACert, c.ServerName
	d.BindDN, d.BindPassword = c.BindDN, c.BindPassword
	if c.BindPasswordFile != "" {
		d.BindPassword = "(from file)"
		if readSecrets {
			b, err := os.ReadFile(c.BindPasswordFile)
			if err != nil {
				return nil, fmt.Errorf("read the LDAP bind password: %w", err)
			}
			d.BindPassword = strings.TrimRight(string(b), "\r\n")
		}
	}
	d.ConnectTimeout, d.Timeout = c.ConnectTimeout, c.Timeout
	d.Paged, d.PageSize = c.Paged, uint32(max(c.PageSize, 0)) //nolint:gosec // validated
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
	d.Overrides = map[string]directory.View{}
	users, err := ParseMapperFilters(c.MapperUserFilters)
	if err != nil {
		errs = append(errs, fmt.Errorf("--mappers-user-filter: %w", err))
	}
	groups, err := ParseMapperFilters(c.MapperGroupFilters)
	if err != nil {
		errs = append(errs, fmt.Errorf("--mappers-group-filter: %w", err))
	}
	for m, f := range users {
		v := d.Overrides[m]
		v.UserFilter = f
		d.Overrides[m] = v
	}
	for m, f := range groups {
		v := d.Overrides[m]
		v.GroupFilter = f
		d.Overrides[m] = v
	}
	if slices.Contains(c.Mappers, directory.MapperHome) && d.UserAttrs.Home == "" {
		errs = append(errs, errors.New("the user-home mapper needs a home attribute in --ldap-user-attr-map"))
	}
	if err := d.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return &d, nil
}

// ParseMapperFilters parses "mapper=(filter)" values. Each value may hold
// several pairs joined by commas, as the original's MAPPERS_*_FILTER
// variables did; a comma splits only where a known mapper name and "="
// follow it, so filters with commas (DNs) survive.
func ParseMapperFilters(values []string) (map[string]string, error) {
	out := map[string]string{}
	s := strings.Join(values, ",")
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] != ',' {
			continue
		}
		rest := s[i+1:]
		for _, m := range directory.Mappers {
			if strings.HasPrefix(strings.TrimSpace(rest), m+"=") {
				parts = append(parts, s[start:i])
				start = i + 1
				break
			}
		}
	}
	parts = append(parts, s[start:])
	var errs []error
	for _, p := range parts {
		m, f, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || f == "" {
			errs = append(errs, fmt.Errorf("%q: want mapper=(filter)", p))
			continue
		}
		if !slices.Contains(directory.Mappers, m) {
			errs = append(errs, fmt.Errorf("%q: unknown mapper %q", p, m))
			continue
		}
		if _, dup := out[m]; dup {
			errs = append(errs, fmt.Errorf("mapper %q has two filters", m))
		}
		out[m] = strings.TrimSpace(f)
	}
	return out, errors.Join(errs...)
}

// Build returns the pass.
func (c *Config) Build(_ context.Context, env app.Env) (daemon.Pass, error) {
	return New(c, Deps{Client: env.Client, Log: env.Log, Registry: env.Registry})
}
