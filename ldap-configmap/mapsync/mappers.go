package mapsync

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/pflag"

	"github.com/kubehpc/kubehpc/pkg/ldapdir"
)

// Mapper names: one ConfigMap each. They key the per-mapper filters.
const (
	MapperUID       = "user-uid"
	MapperGID       = "user-gid"
	MapperGIDs      = "user-gids"
	MapperGroups    = "user-groups"
	MapperAllGroups = "user-all-groups"
	MapperHome      = "user-home"
)

// Mappers lists every mapper name in output order.
var Mappers = []string{MapperUID, MapperGID, MapperGIDs, MapperGroups, MapperAllGroups, MapperHome}

// MapperFilters are the --mappers-*-filter flags: a user and a group filter
// per mapper, over the global --ldap-*-filter.
type MapperFilters struct {
	MapperUserFilters  []string
	MapperGroupFilters []string
}

// addFlags registers --mappers-user-filter and --mappers-group-filter.
func (o *MapperFilters) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.MapperUserFilters, "mappers-user-filter", o.MapperUserFilters, "Per-mapper user filter as mapper=(filter); repeat the flag for several mappers (filters may contain commas)")
	fs.StringArrayVar(&o.MapperGroupFilters, "mappers-group-filter", o.MapperGroupFilters, "Per-mapper group filter as mapper=(filter); repeat the flag for several mappers (filters may contain commas)")
}

// overrides parses the flags into a View per mapper (an empty field keeps
// the global filter) and checks that every filter compiles.
func (o *MapperFilters) overrides() (map[string]ldapdir.View, error) {
	var errs []error
	out := map[string]ldapdir.View{}
	users, err := ParseMapperFilters(o.MapperUserFilters)
	if err != nil {
		errs = append(errs, fmt.Errorf("--mappers-user-filter: %w", err))
	}
	groups, err := ParseMapperFilters(o.MapperGroupFilters)
	if err != nil {
		errs = append(errs, fmt.Errorf("--mappers-group-filter: %w", err))
	}
	for m, f := range users {
		v := out[m]
		v.UserFilter = f
		out[m] = v
	}
	for m, f := range groups {
		v := out[m]
		v.GroupFilter = f
		out[m] = v
	}
	for _, v := range out {
		if err := ldapdir.ValidateFilters(v.UserFilter, v.GroupFilter); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// ldapConfig is the LDAP configuration with the per-mapper filters.
type ldapConfig struct {
	*ldapdir.Config
	// Overrides replace UserFilter and/or GroupFilter for one mapper (by
	// mapper name); an empty field keeps the global filter.
	Overrides map[string]ldapdir.View
}

// For returns the filters a mapper uses.
func (c *ldapConfig) For(mapper string) ldapdir.View {
	v := c.View()
	if o, ok := c.Overrides[mapper]; ok {
		if o.UserFilter != "" {
			v.UserFilter = o.UserFilter
		}
		if o.GroupFilter != "" {
			v.GroupFilter = o.GroupFilter
		}
	}
	return v
}

// AnnotationViews are the views the namespace annotations come from: the
// user, UID, GID and home from user-uid's view, the GIDs from user-gids' and
// the group names from user-groups', so that annotations and maps agree.
func (c *ldapConfig) AnnotationViews() ldapdir.IdentityViews {
	return ldapdir.IdentityViews{Base: c.For(MapperUID), GIDs: c.For(MapperGIDs), Groups: c.For(MapperGroups)}
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
		for _, m := range Mappers {
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
		if !slices.Contains(Mappers, m) {
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
