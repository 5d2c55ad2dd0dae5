package ldapdir

import (
	"maps"
	"slices"
	"strings"

	"github.com/kubehpc/kubehpc/pkg/naming"
)

// ResolveChanges returns what Resolve(cfg, prefix, snap.Users[v.UserFilter],
// snap.Groups[v.GroupFilter]) returns, computed from prev, view v's Result
// before the incremental read that returned snap and d (ReadStats.Delta),
// by resolving again only the users a change can touch: the changed users,
// the members (old and new, nested included) of the changed groups, the
// users whose groups or primary GID name a changed group, and every user
// sharing a namespace name with one of those (collisions). Unchanged
// identities are carried over. prev's maps are not modified, except its
// internal name index, which moves to the result: resolve the next change
// from the result, never from prev again. Without an index (prev not from
// Resolve or ResolveChanges) or a delta, it resolves everything.
func ResolveChanges(cfg *Config, prefix string, v View, prev Result, snap *Snapshot, d *Delta) Result {
	if prev.keyIndex == nil || d == nil || snap.users == nil {
		return Resolve(cfg, prefix, snap.Users[v.UserFilter], snap.Groups[v.GroupFilter])
	}
	uc, gc := d.Users[v.UserFilter], d.Groups[v.GroupFilter]
	if len(uc) == 0 && len(gc) == 0 {
		return prev
	}
	current := snap.users[v.UserFilter] // by DN key, after the read
	groups := snap.Groups[v.GroupFilter]

	affected := map[string]bool{} // user DN keys
	names := map[string]bool{}    // namespace names
	nameOf := func(user string) {
		if user == "" {
			return
		}
		if k, err := naming.NamespaceForUser(prefix, user); err == nil {
			names[k] = true
		}
	}
	for _, c := range uc {
		for _, u := range []*User{c.Old, c.New} {
			if u != nil {
				affected[cacheKeyOf(u.DN)] = true
				nameOf(u.Name)
			}
		}
	}
	if len(gc) > 0 {
		groupNames, gids := map[string]bool{}, map[string]bool{}
		var memberDNs []string
		for _, c := range gc {
			for _, g := range []*Group{c.Old, c.New} {
				if g == nil {
					continue
				}
				if g.Name != "" {
					groupNames[g.Name] = true
				}
				if n, err := number(g.GID); err == nil {
					gids[n] = true
				}
				for _, m := range g.MemberUID {
					nameOf(strings.TrimSpace(m))
				}
				memberDNs = append(memberDNs, g.Member...)
			}
		}
		if cfg.Scheme == SchemeMember && cfg.Nested {
			memberDNs = append(memberDNs, nestedMembers(groups, gc)...)
		}
		for _, m := range memberDNs {
			if k, ok := normDN(m); ok {
				affected[k] = true
			}
		}
		// The users whose groups (nesting included) or primary group's
		// name come from a changed group, before the change.
		for key, id := range prev.Identities {
			if gids[id.GID] || slices.ContainsFunc(id.Groups, func(n string) bool { return groupNames[n] }) {
				names[key] = true
			}
		}
	}
	for k := range affected {
		if u, ok := current[k]; ok {
			nameOf(u.Name)
		}
	}
	// Every entry sharing a name with an affected one, so that collisions
	// are decided among all of them.
	for k := range names {
		for _, dk := range prev.keyIndex[k] {
			affected[dk] = true
		}
	}

	var subset []User
	for _, k := range slices.Sorted(maps.Keys(affected)) {
		if u, ok := current[k]; ok {
			subset = append(subset, *u)
		}
	}
	sub := Resolve(cfg, prefix, subset, groups)

	res := Result{Identities: maps.Clone(prev.Identities), Collisions: maps.Clone(prev.Collisions), keyIndex: prev.keyIndex, resolved: len(subset)}
	for k := range names {
		delete(res.Identities, k)
		delete(res.Collisions, k)
		kept := slices.DeleteFunc(slices.Clone(res.keyIndex[k]), func(dk string) bool { return affected[dk] })
		if len(kept) == 0 {
			delete(res.keyIndex, k)
		} else {
			res.keyIndex[k] = kept
		}
	}
	maps.Copy(res.Identities, sub.Identities)
	maps.Copy(res.Collisions, sub.Collisions)
	for k, dks := range sub.keyIndex {
		res.keyIndex[k] = append(res.keyIndex[k], dks...)
	}
	// Skips: the groups' from this resolution (it saw every group), the
	// users' kept for the users not resolved again.
	var userSkips []Skip
	for _, s := range sub.Skipped {
		if groupSkip(s.Reason) {
			res.Skipped = append(res.Skipped, s)
		} else {
			userSkips = append(userSkips, s)
		}
	}
	for _, s := range prev.Skipped {
		if !groupSkip(s.Reason) && !affected[cacheKeyOf(s.DN)] {
			userSkips = append(userSkips, s)
		}
	}
	slices.SortStableFunc(userSkips, func(a, b Skip) int { return strings.Compare(cacheKeyOf(a.DN), cacheKeyOf(b.DN)) })
	res.Skipped = append(res.Skipped, userSkips...)
	return res
}

// groupSkip reports whether a skip reason is about a group entry.
func groupSkip(reason string) bool {
	switch reason {
	case SkipGroupMissingName, SkipGroupInvalidName, SkipGroupMissingGID, SkipGroupInvalidGID, SkipInvalidDN:
		return true
	}
	return false
}

// nestedMembers returns the member DNs of every group nested (at any depth)
// in the changed groups, after the change: their users gain or keep the
// changed groups through nesting (member scheme).
func nestedMembers(groups []Group, gc []GroupChange) []string {
	byDN := make(map[string]int, len(groups))
	for i, g := range groups {
		if k, ok := normDN(g.DN); ok {
			byDN[k] = i
		}
	}
	seen := map[int]bool{}
	var queue []int
	for _, c := range gc {
		if c.New == nil {
			continue
		}
		for _, m := range c.New.Member {
			if k, ok := normDN(m); ok {
				if i, ok := byDN[k]; ok && !seen[i] {
					seen[i] = true
					queue = append(queue, i)
				}
			}
		}
	}
	var out []string
	for len(queue) > 0 {
		g := groups[queue[0]]
		queue = queue[1:]
		out = append(out, g.Member...)
		for _, m := range g.Member {
			if k, ok := normDN(m); ok {
				if i, ok := byDN[k]; ok && !seen[i] {
					seen[i] = true
					queue = append(queue, i)
				}
			}
		}
	}
	return out
}
