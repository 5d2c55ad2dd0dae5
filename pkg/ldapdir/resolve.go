package ldapdir

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/kubehpc/kubehpc/pkg/naming"
)

// Identity is what the admission policies need to know about one user.
type Identity struct {
	// User is the LDAP username, Namespace the key (prefix + normalised name).
	User, Namespace string
	DN              string
	UID, GID, Home  string
	// GIDs are numerically sorted and include the primary GID.
	GIDs []string
	// Groups are sorted group names and include the primary group's name
	// when that group is among the groups searched.
	Groups []string
}

// Skip reasons, the label values of skipped_entries_total.
const (
	SkipMissingName      = "missing_name"
	SkipInvalidUsername  = "invalid_username"
	SkipDuplicateKey     = "duplicate_key"
	SkipMissingUID       = "missing_uid_number"
	SkipInvalidUID       = "invalid_uid_number"
	SkipMissingGID       = "missing_gid_number"
	SkipInvalidGID       = "invalid_gid_number"
	SkipGroupMissingName = "group_missing_name"
	SkipGroupInvalidName = "group_invalid_name"
	// SkipGroupMissingGID is no longer used: a group without a gidNumber
	// keeps its name and nesting (kept so the metric label stays known).
	SkipGroupMissingGID = "group_missing_gid_number"
	SkipGroupInvalidGID = "group_invalid_gid_number"
	SkipInvalidDN       = "invalid_dn"
)

// Skip records an entry left out and why.
type Skip struct {
	DN, Name, Reason, Detail string
}

// Result is the identities of one view, keyed by namespace name.
type Result struct {
	Identities map[string]Identity
	Skipped    []Skip
	// Collisions are the namespace names that two or more entries map to
	// (pkg/naming: names differing only in case, or in '.', '@' and '-'),
	// with the colliding LDAP names, sorted. None of them has an identity.
	Collisions map[string][]string
	// keyIndex lists, by namespace name, the DN keys (cacheKeyOf) of every
	// user entry with that valid name, good or bad: who can collide with
	// whom, for ResolveChanges.
	keyIndex map[string][]string
	// resolved counts the user entries resolved to compute this result.
	resolved int
}

// normDN returns a canonical form of a DN for comparison: parsed, attribute
// types and values case-folded. ok is false if dn does not parse.
func normDN(dn string) (string, bool) {
	if k, ok := fastNormDN(dn); ok {
		return k, true
	}
	d, err := ldap.ParseDN(dn)
	if err != nil {
		return "", false
	}
	for _, r := range d.RDNs {
		for _, a := range r.Attributes {
			a.Type = strings.ToLower(a.Type)
			a.Value = strings.ToLower(a.Value)
		}
	}
	return d.String(), true
}

// fastNormDN is normDN for the common DN without escapes, quotes or
// multi-valued RDNs ("uid=alice, ou=people,dc=example,dc=org"): the same
// result as ldap.ParseDN's String without parsing (a full read parses about
// a million member DNs). ok is false when the slow path is needed.
func fastNormDN(dn string) (string, bool) {
	if dn == "" {
		return "", false
	}
	upper, space := false, false
	for i := 0; i < len(dn); i++ {
		c := dn[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '-', c == '_', c == '@', c == '=', c == ',':
		case c == ' ':
			space = true
		case c >= 'A' && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		dn = strings.ToLower(dn)
	}
	// Without spaces the canonical form is dn itself: checked, not copied
	// (the cache and the resolution keep one key per user).
	var b strings.Builder
	if space {
		b.Grow(len(dn))
	}
	i := -1
	for rdn := range strings.SplitSeq(dn, ",") {
		i++
		t, v, ok := strings.Cut(strings.TrimLeft(rdn, " "), "=")
		v = strings.TrimRight(v, " ")
		if !ok || t == "" || v == "" || v[0] == ' ' || strings.Contains(v, "=") || strings.Contains(t, " ") {
			return "", false
		}
		if !space {
			continue
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(t)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if !space {
		return dn, true
	}
	return b.String(), true
}

// number returns the canonical decimal form of a POSIX ID.
func number(s string) (string, error) {
	t := strings.TrimSpace(s)
	n, err := strconv.ParseUint(t, 10, 32)
	if err != nil {
		return "", err
	}
	if len(t) > 0 && (t[0] != '0' || len(t) == 1) && t[0] != '+' {
		return t, nil // already canonical: kept, not copied
	}
	return strconv.FormatUint(n, 10), nil
}

type group struct {
	name, gid string
	dn        string
}

// Resolve computes every user's identity from users and groups, as read
// with cfg, keyed by naming.NamespaceForUser(prefix, name). Bad entries are
// skipped and reported, never fatal.
func Resolve(cfg *Config, prefix string, users []User, groups []Group) Result {
	res := Result{Identities: map[string]Identity{}, Collisions: map[string][]string{}, keyIndex: make(map[string][]string, len(users)), resolved: len(users)}
	skip := func(dn, name, reason, detail string) {
		res.Skipped = append(res.Skipped, Skip{DN: dn, Name: name, Reason: reason, Detail: detail})
	}

	// Groups: validate, index by DN and GID.
	gs := make([]group, 0, len(groups))
	byDN := map[string]int{}
	byGID := map[string][]int{}
	for _, g := range groups {
		switch {
		case g.Name == "":
			skip(g.DN, "", SkipGroupMissingName, "")
			continue
		case strings.ContainsAny(g.Name, ", \t\n"):
			skip(g.DN, g.Name, SkipGroupInvalidName, "group names may not contain commas or whitespace")
			continue
		}
		// A group without a gidNumber (a plain groupOfNames) still names
		// its members' groups and nests; it only adds no GID.
		var gid string
		if g.GID != "" {
			var err error
			if gid, err = number(g.GID); err != nil {
				skip(g.DN, g.Name, SkipGroupInvalidGID, g.GID)
				continue
			}
		}
		dn, ok := normDN(g.DN)
		if !ok {
			skip(g.DN, g.Name, SkipInvalidDN, "")
			continue
		}
		byDN[dn] = len(gs)
		if gid != "" {
			byGID[gid] = append(byGID[gid], len(gs))
		}
		gs = append(gs, group{name: g.Name, gid: gid, dn: dn})
	}

	// Users: validate and key.
	type user struct {
		id       Identity
		dn       string
		memberOf []string
	}
	us := make([]user, 0, len(users))
	byKey := map[string][]int{}
	// names lists every entry with a valid key, bad or not: a bad entry
	// named like a good one still makes the name ambiguous.
	names := map[string][]string{}
	keys := make([]string, len(users))
	keyErrs := make([]error, len(users))
	dnKeys := make([]string, len(users))
	for i, u := range users {
		if u.Name == "" {
			continue
		}
		keys[i], keyErrs[i] = naming.NamespaceForUser(prefix, u.Name)
		if keyErrs[i] == nil {
			names[keys[i]] = append(names[keys[i]], u.Name)
			dnKeys[i] = cacheKeyOf(u.DN)
			res.keyIndex[keys[i]] = append(res.keyIndex[keys[i]], dnKeys[i])
		}
	}
	for key, n := range names {
		if len(n) > 1 {
			sort.Strings(n)
			res.Collisions[key] = n
		}
	}
	for i, u := range users {
		if u.Name == "" {
			skip(u.DN, "", SkipMissingName, "")
			continue
		}
		key, err := keys[i], keyErrs[i]
		if err != nil {
			skip(u.DN, u.Name, SkipInvalidUsername, err.Error())
			continue
		}
		if others, ok := res.Collisions[key]; ok {
			skip(u.DN, u.Name, SkipDuplicateKey, fmt.Sprintf("the LDAP names %s all map to %s", strings.Join(others, ", "), key))
			continue
		}
		if u.UID == "" {
			skip(u.DN, u.Name, SkipMissingUID, "")
			continue
		}
		uid, err := number(u.UID)
		if err != nil {
			skip(u.DN, u.Name, SkipInvalidUID, u.UID)
			continue
		}
		if u.GID == "" {
			skip(u.DN, u.Name, SkipMissingGID, "")
			continue
		}
		gid, err := number(u.GID)
		if err != nil {
			skip(u.DN, u.Name, SkipInvalidGID, u.GID)
			continue
		}
		dn := dnKeys[i] // normDN's, or "\x00" and the DN when it does not parse
		if strings.HasPrefix(dn, "\x00") {
			dn = ""
		}
		byKey[key] = append(byKey[key], len(us))
		us = append(us, user{id: Identity{User: u.Name, Namespace: key, DN: u.DN, UID: uid, GID: gid, Home: u.Home}, dn: dn, memberOf: u.MemberOf})
	}
	// Colliding keys were left out above, so every key is unique here.
	valid := make([]bool, len(us))
	for _, idx := range byKey {
		valid[idx[0]] = len(idx) == 1
	}

	// Direct memberships: user index -> group indexes.
	direct := make([][]int, len(us))
	parents := make([][]int, len(gs)) // group -> groups that contain it
	switch cfg.Scheme {
	case SchemeMemberUID:
		byName := map[string][]int{}
		for i, u := range us {
			n := strings.ToLower(u.id.User)
			byName[n] = append(byName[n], i)
		}
		for _, g := range groups {
			idx, ok := groupIndex(byDN, g.DN)
			if !ok {
				continue
			}
			for _, m := range g.MemberUID {
				for _, ui := range byName[strings.ToLower(strings.TrimSpace(m))] {
					direct[ui] = append(direct[ui], idx)
				}
			}
		}
	case SchemeMember:
		userByDN := map[string]int{}
		for i, u := range us {
			if u.dn != "" {
				userByDN[u.dn] = i
			}
		}
		for _, g := range groups {
			idx, ok := groupIndex(byDN, g.DN)
			if !ok {
				continue
			}
			for _, m := range g.Member {
				mdn, ok := normDN(m)
				if !ok {
					continue
				}
				if ui, ok := userByDN[mdn]; ok {
					direct[ui] = append(direct[ui], idx)
				} else if ci, ok := byDN[mdn]; ok && cfg.Nested {
					parents[ci] = append(parents[ci], idx)
				}
			}
		}
	case SchemeMemberOf:
		for i, u := range us {
			for _, m := range u.memberOf {
				if gi, ok := groupIndex(byDN, m); ok {
					direct[i] = append(direct[i], gi)
				}
			}
		}
		if cfg.Nested {
			for _, g := range groups {
				idx, ok := groupIndex(byDN, g.DN)
				if !ok {
					continue
				}
				for _, m := range g.MemberOf {
					if pi, ok := groupIndex(byDN, m); ok {
						parents[idx] = append(parents[idx], pi)
					}
				}
			}
		}
	}

	nested := slices.ContainsFunc(parents, func(p []int) bool { return len(p) > 0 })
	for i, u := range us {
		if !valid[i] {
			continue
		}
		id := u.id
		member := direct[i]
		if nested {
			member = closure(member, parents)
		} else {
			// No group is in another: the direct groups, each once (the
			// lists are sorted below, so their order does not matter).
			slices.Sort(member)
			member = slices.Compact(member)
		}
		// GIDs and Groups share one array allocated at its size: two lists
		// per user are most of what a resolution keeps (50,000 users).
		list := make([]string, 0, 2*len(member)+2)
		gids := append(list, id.GID)
		names := list[len(member)+1 : len(member)+1]
		for _, gi := range member {
			if gs[gi].gid != "" {
				gids = append(gids, gs[gi].gid)
			}
			names = append(names, gs[gi].name)
		}
		if prim := byGID[id.GID]; len(prim) > 0 {
			best := gs[prim[0]].name
			for _, p := range prim[1:] {
				best = min(best, gs[p].name)
			}
			names = append(names, best)
		}
		slices.SortFunc(gids, compareDecimal) // canonical decimals: no parsing

		sort.Strings(names)
		id.GIDs = slices.Clip(slices.Compact(gids))
		id.Groups = slices.Clip(slices.Compact(names))
		if id.Groups == nil {
			id.Groups = []string{}
		}
		res.Identities[id.Namespace] = id
	}
	return res
}

// compareDecimal orders canonical decimal strings (no sign, no leading
// zeros) by value.
func compareDecimal(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	return strings.Compare(a, b)
}

func groupIndex(byDN map[string]int, dn string) (int, bool) {
	n, ok := normDN(dn)
	if !ok {
		return 0, false
	}
	i, ok := byDN[n]
	return i, ok
}

// closure returns start plus every group that transitively contains one of
// them; cycles end because each group is visited once.
func closure(start []int, parents [][]int) []int {
	if len(start) == 0 {
		return nil
	}
	seen := make(map[int]bool, len(start))
	queue := append([]int(nil), start...)
	var out []int
	for len(queue) > 0 {
		g := queue[0]
		queue = queue[1:]
		if seen[g] {
			continue
		}
		seen[g] = true
		out = append(out, g)
		queue = append(queue, parents[g]...)
	}
	return out
}

// ErrNotFound is returned by LookupUser when the user is not in the directory
// (or is filtered out, or skipped as a bad entry).
var ErrNotFound = errors.New("user not found in LDAP")
