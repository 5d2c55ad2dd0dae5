// Package ldapdir reads users and groups from LDAP and computes each user's
// identity: UID, primary GID, supplemental GIDs, group names and home
// directory. It connects (ldap://, ldaps://, StartTLS), pages, completes
// Active Directory's ranged attributes, resolves nested groups under three
// member schemes, reads incrementally through a Cache, and looks up one
// user (LookupUser) with exactly the rules of the full read. ldap-configmap
// reads the whole directory with it and namespace-bootstrap looks users up
// at login, so both compute the same identity. It takes plain filters
// (View); it reads no globals, and its only flags are Options.AddFlags.
package ldapdir

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Member schemes: how group membership is recorded.
const (
	// SchemeMemberOf reads memberOf DNs on users (and on groups for nesting).
	SchemeMemberOf = "memberof"
	// SchemeMember reads member DNs on groups (RFC2307bis, groupOfNames, AD).
	SchemeMember = "member"
	// SchemeMemberUID reads memberUid usernames on groups (RFC2307).
	SchemeMemberUID = "memberuid"
)

// Presets name a set of default attribute names, filters and member scheme.
const (
	PresetRFC2307    = "rfc2307"
	PresetRFC2307bis = "rfc2307bis"
	PresetAD         = "ad"
)

// UserAttrs are the LDAP attribute names read from users.
type UserAttrs struct {
	Name, UID, GID, Home string
}

// GroupAttrs are the LDAP attribute names read from groups.
type GroupAttrs struct {
	Name, GID string
}

// View is a pair of filters: which users and which groups a result covers.
type View struct {
	UserFilter, GroupFilter string
}

// IdentityViews are the views one identity is computed from: the user, UID,
// GID and home from Base, the GIDs from GIDs and the group names from
// Groups (ldap-configmap narrows each with its per-mapper filters, so that
// namespace annotations and maps agree).
type IdentityViews struct {
	Base, GIDs, Groups View
}

// List returns the three views in order (Base, GIDs, Groups).
func (v IdentityViews) List() []View { return []View{v.Base, v.GIDs, v.Groups} }

// Config is everything needed to connect to and read the directory.
type Config struct {
	// URL is ldap://host:port or ldaps://host:port.
	URL string
	// StartTLS upgrades an ldap:// connection.
	StartTLS bool
	// CAFile and CAPEM (contents) add trusted CAs for ldaps and StartTLS alike.
	CAFile string
	CAPEM  string
	// InsecureSkipVerify disables certificate verification (tests only).
	InsecureSkipVerify bool
	// ServerName overrides the name verified in the server certificate.
	ServerName string
	// BindDN and BindPassword for a simple bind; both empty means anonymous.
	BindDN, BindPassword string
	// ConnectTimeout bounds dialling and TLS; Timeout bounds each operation.
	ConnectTimeout, Timeout time.Duration
	// Paged turns on the RFC 2696 paged results control with PageSize.
	Paged    bool
	PageSize uint32

	UserBaseDN, GroupBaseDN string
	UserFilter, GroupFilter string
	Scheme                  string
	// Nested resolves groups that are members of groups (member and memberof schemes).
	Nested     bool
	UserAttrs  UserAttrs
	GroupAttrs GroupAttrs
}

// Defaults are the values of the original k8-ldap-configmap.
var (
	DefaultUserAttrs   = UserAttrs{Name: "uid", UID: "uidNumber", GID: "gidNumber", Home: "homeDirectory"}
	DefaultGroupAttrs  = GroupAttrs{Name: "cn", GID: "gidNumber"}
	DefaultUserFilter  = "(objectClass=posixAccount)"
	DefaultGroupFilter = "(objectClass=posixGroup)"
	DefaultScheme      = SchemeMemberOf
)

// Preset returns the defaults of a preset ("" is the original tool's).
func Preset(name string) (Config, error) {
	c := Config{UserAttrs: DefaultUserAttrs, GroupAttrs: DefaultGroupAttrs,
		UserFilter: DefaultUserFilter, GroupFilter: DefaultGroupFilter, Scheme: DefaultScheme}
	switch name {
	case "":
	case PresetRFC2307:
		c.Scheme = SchemeMemberUID
	case PresetRFC2307bis:
		c.Scheme = SchemeMember
		c.GroupFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfMembers))"
	case PresetAD:
		c.Scheme = SchemeMember
		c.UserAttrs = UserAttrs{Name: "sAMAccountName", UID: "uidNumber", GID: "gidNumber", Home: "unixHomeDirectory"}
		c.GroupAttrs = GroupAttrs{Name: "cn", GID: "gidNumber"}
		c.UserFilter = "(&(objectClass=user)(objectCategory=person)(uidNumber=*))"
		c.GroupFilter = "(&(objectClass=group)(gidNumber=*))"
	default:
		return Config{}, fmt.Errorf("unknown preset %q: want %s, %s or %s", name, PresetRFC2307, PresetRFC2307bis, PresetAD)
	}
	return c, nil
}

// View returns the global filters.
func (c *Config) View() View { return View{UserFilter: c.UserFilter, GroupFilter: c.GroupFilter} }

// IdentityViews returns the global filters for all three views.
func (c *Config) IdentityViews() IdentityViews {
	v := c.View()
	return IdentityViews{Base: v, GIDs: v, Groups: v}
}

// Validate checks the configuration, returning every problem.
func (c *Config) Validate() error {
	var errs []error
	if c.URL == "" {
		errs = append(errs, errors.New("the LDAP URL is required"))
	} else if !strings.HasPrefix(strings.ToLower(c.URL), "ldap://") && !strings.HasPrefix(strings.ToLower(c.URL), "ldaps://") {
		errs = append(errs, fmt.Errorf("LDAP URL %q: want ldap:// or ldaps://", c.URL))
	}
	if c.StartTLS && strings.HasPrefix(strings.ToLower(c.URL), "ldaps://") {
		errs = append(errs, errors.New("StartTLS cannot be used with an ldaps:// URL"))
	}
	if (c.BindDN == "") != (c.BindPassword == "") {
		errs = append(errs, errors.New("set both the bind DN and the bind password, or neither (anonymous)"))
	}
	if c.UserBaseDN == "" {
		errs = append(errs, errors.New("the user base DN is required"))
	}
	if c.GroupBaseDN == "" {
		errs = append(errs, errors.New("the group base DN is required"))
	}
	for _, dn := range []string{c.UserBaseDN, c.GroupBaseDN} {
		if _, err := ldap.ParseDN(dn); dn != "" && err != nil {
			errs = append(errs, fmt.Errorf("base DN %q: %w", dn, err))
		}
	}
	if !slices.Contains([]string{SchemeMemberOf, SchemeMember, SchemeMemberUID}, c.Scheme) {
		errs = append(errs, fmt.Errorf("member scheme %q: want %s, %s or %s", c.Scheme, SchemeMemberOf, SchemeMember, SchemeMemberUID))
	}
	if c.Paged && c.PageSize == 0 {
		errs = append(errs, errors.New("the page size must be positive"))
	}
	if c.ConnectTimeout <= 0 || c.Timeout <= 0 {
		errs = append(errs, errors.New("the LDAP connect and operation timeouts must be positive"))
	}
	if c.UserAttrs.Name == "" || c.UserAttrs.UID == "" || c.UserAttrs.GID == "" {
		errs = append(errs, errors.New("the user attribute map needs name, uid and gid"))
	}
	if c.GroupAttrs.Name == "" || c.GroupAttrs.GID == "" {
		errs = append(errs, errors.New("the group attribute map needs name and gid"))
	}
	if err := ValidateFilters(c.UserFilter, c.GroupFilter); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ValidateFilters checks that each non-empty filter compiles.
func ValidateFilters(filters ...string) error {
	var errs []error
	for _, f := range filters {
		if f == "" {
			continue
		}
		if _, err := ldap.CompileFilter(f); err != nil {
			errs = append(errs, fmt.Errorf("LDAP filter %q: %w", f, err))
		}
	}
	return errors.Join(errs...)
}

// ParseUserAttrs parses "name=uid,uid=uidNumber,gid=gidNumber,home=homeDirectory"
// over base (keys not given keep base's value).
func ParseUserAttrs(s string, base UserAttrs) (UserAttrs, error) {
	m, err := parseAttrMap(s, []string{"name", "uid", "gid", "home"})
	if err != nil {
		return base, err
	}
	set := func(dst *string, k string) {
		if v, ok := m[k]; ok {
			*dst = v
		}
	}
	set(&base.Name, "name")
	set(&base.UID, "uid")
	set(&base.GID, "gid")
	set(&base.Home, "home")
	return base, nil
}

// ParseGroupAttrs parses "name=cn,gid=gidNumber" over base.
func ParseGroupAttrs(s string, base GroupAttrs) (GroupAttrs, error) {
	m, err := parseAttrMap(s, []string{"name", "gid"})
	if err != nil {
		return base, err
	}
	if v, ok := m["name"]; ok {
		base.Name = v
	}
	if v, ok := m["gid"]; ok {
		base.GID = v
	}
	return base, nil
}

func parseAttrMap(s string, keys []string) (map[string]string, error) {
	m := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	for _, pair := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || v == "" {
			return nil, fmt.Errorf("attribute map entry %q: want key=attribute", pair)
		}
		if !slices.Contains(keys, k) {
			return nil, fmt.Errorf("attribute map key %q: want one of %s", k, strings.Join(keys, ", "))
		}
		m[k] = v
	}
	return m, nil
}
