package ldapdir

import (
	"context"
	"fmt"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"github.com/kubehpc/kubehpc/pkg/identity"
)

// Annotations renders an identity as the namespace annotations the admission
// policies read. Lists are ",a,b," so that CEL tests membership with
// contains(",N,").
func Annotations(id Identity) map[string]string {
	return map[string]string{
		identity.UIDAnnotation:    id.UID,
		identity.GIDAnnotation:    id.GID,
		identity.GIDsAnnotation:   identity.DelimitedList(id.GIDs),
		identity.GroupsAnnotation: identity.DelimitedList(id.Groups),
		identity.HomeAnnotation:   id.Home,
		identity.UserAnnotation:   id.User,
	}
}

// Combine builds the identity the annotations carry: base (from the Base
// view) with GIDs from the GIDs view and Groups from the Groups view. A user missing from one of those views gets only the
// primary GID, or no groups.
func Combine(base Identity, gids, groups *Identity) Identity {
	id := base
	id.GIDs = []string{base.GID}
	id.Groups = []string{}
	if gids != nil {
		id.GIDs = gids.GIDs
	}
	if groups != nil {
		id.Groups = groups.Groups
	}
	return id
}

// AnnotationIdentities combines the results of the three annotation views.
func AnnotationIdentities(base, gids, groups Result) map[string]Identity {
	out := make(map[string]Identity, len(base.Identities))
	for key, id := range base.Identities {
		var g, n *Identity
		if v, ok := gids.Identities[key]; ok {
			g = &v
		}
		if v, ok := groups.Identities[key]; ok {
			n = &v
		}
		out[key] = Combine(id, g, n)
	}
	return out
}

// LookupUser looks up one user (at login) and returns the identity the
// namespace annotations carry, computed by the same rules as a full read
// resolved with AnnotationIdentities: the same filters (views), attribute
// names, member scheme and nesting. prefix is the namespace prefix. It
// returns an error wrapping ErrNotFound when the user is not in the
// directory, is filtered out or is a bad entry.
func LookupUser(ctx context.Context, cfg *Config, views IdentityViews, prefix, username string) (Identity, error) {
	s, err := Open(ctx, cfg)
	if err != nil {
		return Identity{}, err
	}
	defer func() { _ = s.Close() }()
	return s.LookupUser(ctx, views, prefix, username)
}

// LookupUser is LookupUser on an open session.
func (s *Session) LookupUser(ctx context.Context, views IdentityViews, prefix, username string) (Identity, error) {
	bv, gv, nv := views.Base, views.GIDs, views.Groups
	results := map[View]Result{}
	for _, v := range []View{bv, gv, nv} {
		if _, ok := results[v]; ok {
			continue
		}
		r, err := s.lookupView(ctx, v, prefix, username)
		if err != nil {
			return Identity{}, err
		}
		results[v] = r
	}
	base := results[bv]
	for key, id := range base.Identities {
		if strings.EqualFold(id.User, username) {
			return AnnotationIdentities(Result{Identities: map[string]Identity{key: id}}, results[gv], results[nv])[key], nil
		}
	}
	for _, sk := range base.Skipped {
		if strings.EqualFold(sk.Name, username) {
			return Identity{}, fmt.Errorf("user %q: skipped (%s %s): %w", username, sk.Reason, sk.Detail, ErrNotFound)
		}
	}
	return Identity{}, fmt.Errorf("user %q: %w", username, ErrNotFound)
}

// lookupView reads the one user and the groups relevant to it, then resolves
// them with Resolve, so that the result equals the full sync's entry.
func (s *Session) lookupView(ctx context.Context, v View, prefix, username string) (Result, error) {
	cfg := s.cfg
	uf := fmt.Sprintf("(&%s(%s=%s))", v.UserFilter, cfg.UserAttrs.Name, ldap.EscapeFilter(username))
	users, err := s.Users(ctx, uf)
	if err != nil {
		return Result{}, err
	}
	if len(users) == 0 {
		return Result{Identities: map[string]Identity{}}, nil
	}
	attrs, ranged := cfg.groupAttrs()
	var groups []Group
	seen := map[string]bool{}
	add := func(gs []Group) []Group {
		var fresh []Group
		for _, g := range gs {
			k, ok := normDN(g.DN)
			if !ok || seen[k] {
				continue
			}
			seen[k] = true
			groups = append(groups, g)
			fresh = append(fresh, g)
		}
		return fresh
	}
	searchGroups := func(filter string) ([]Group, error) {
		return s.Groups(ctx, fmt.Sprintf("(&%s%s)", v.GroupFilter, filter))
	}
	var clauses []string
	for _, u := range users {
		if g, err := number(u.GID); err == nil {
			clauses = append(clauses, fmt.Sprintf("(%s=%s)", cfg.GroupAttrs.GID, g))
		}
		switch cfg.Scheme {
		case SchemeMemberUID:
			clauses = append(clauses, fmt.Sprintf("(%s=%s)", attrMemberUID, ldap.EscapeFilter(u.Name)))
		case SchemeMember:
			clauses = append(clauses, fmt.Sprintf("(%s=%s)", attrMember, ldap.EscapeFilter(u.DN)))
		}
	}
	fresh, err := searchGroups("(|" + strings.Join(clauses, "") + ")")
	if err != nil {
		return Result{}, err
	}
	frontier := add(fresh)
	groupBase, _ := ldap.ParseDN(cfg.GroupBaseDN)
	// memberof: the user's groups are read by DN.
	var byDN []string
	if cfg.Scheme == SchemeMemberOf {
		for _, u := range users {
			byDN = append(byDN, u.MemberOf...)
		}
	}
	for round := 0; round < 1000; round++ {
		for _, dn := range byDN {
			k, ok := normDN(dn)
			if !ok || seen[k] {
				continue
			}
			if d, err := ldap.ParseDN(dn); err != nil || !(groupBase.AncestorOfFold(d) || groupBase.EqualFold(d)) {
				continue
			}
			err := s.search(ctx, dn, ldap.ScopeBaseObject, v.GroupFilter, attrs, ranged,
				func(e *ldap.Entry) { frontier = append(frontier, add([]Group{cfg.toGroup(e)})...) })
			if err != nil {
				return Result{}, err
			}
		}
		byDN = nil
		if !cfg.Nested || len(frontier) == 0 {
			break
		}
		// Walk up: the groups that contain the groups just found.
		switch cfg.Scheme {
		case SchemeMember:
			var or []string
			for _, g := range frontier {
				or = append(or, fmt.Sprintf("(%s=%s)", attrMember, ldap.EscapeFilter(g.DN)))
			}
			frontier = nil
			found, err := searchGroups("(|" + strings.Join(or, "") + ")")
			if err != nil {
				return Result{}, err
			}
			frontier = add(found)
		case SchemeMemberOf:
			for _, g := range frontier {
				byDN = append(byDN, g.MemberOf...)
			}
			frontier = nil
			if len(byDN) == 0 {
				return Resolve(cfg, prefix, users, groups), nil
			}
		default:
			frontier = nil
		}
		if len(frontier) == 0 && len(byDN) == 0 {
			break
		}
	}
	return Resolve(cfg, prefix, users, groups), nil
}
