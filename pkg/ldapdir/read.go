package ldapdir

import (
	"context"
	"strings"

	"github.com/go-ldap/ldap/v3"
)

// User is a user entry as read.
type User struct {
	DN, Name, UID, GID, Home string
	MemberOf                 []string
}

// Group is a group entry as read.
type Group struct {
	DN, Name, GID string
	// Member are member DNs (users or groups), MemberUID usernames, MemberOf
	// the groups this group is in.
	Member, MemberUID, MemberOf []string
}

const (
	attrMember    = "member"
	attrMemberUID = "memberUid"
	attrMemberOf  = "memberOf"
)

func (c *Config) userAttrs() []string {
	a := []string{c.UserAttrs.Name, c.UserAttrs.UID, c.UserAttrs.GID}
	if c.UserAttrs.Home != "" {
		a = append(a, c.UserAttrs.Home)
	}
	if c.Scheme == SchemeMemberOf {
		a = append(a, attrMemberOf)
	}
	return a
}

func (c *Config) groupAttrs() (attrs, ranged []string) {
	attrs = []string{c.GroupAttrs.Name, c.GroupAttrs.GID}
	switch c.Scheme {
	case SchemeMember:
		attrs = append(attrs, attrMember)
		ranged = []string{attrMember}
	case SchemeMemberUID:
		attrs = append(attrs, attrMemberUID)
	case SchemeMemberOf:
		if c.Nested {
			attrs = append(attrs, attrMemberOf)
		}
	}
	return attrs, ranged
}

// first returns the first value of an attribute, matched case-insensitively.
func first(e *ldap.Entry, attr string) string {
	if attr == "" {
		return ""
	}
	return strings.TrimSpace(e.GetEqualFoldAttributeValue(attr))
}

func (c *Config) toUser(e *ldap.Entry) User {
	u := User{DN: e.DN, Name: first(e, c.UserAttrs.Name), UID: first(e, c.UserAttrs.UID),
		GID: first(e, c.UserAttrs.GID), Home: first(e, c.UserAttrs.Home)}
	if c.Scheme == SchemeMemberOf {
		u.MemberOf = e.GetEqualFoldAttributeValues(attrMemberOf)
	}
	return u
}

func (c *Config) toGroup(e *ldap.Entry) Group {
	return Group{DN: e.DN, Name: first(e, c.GroupAttrs.Name), GID: first(e, c.GroupAttrs.GID),
		Member:    e.GetEqualFoldAttributeValues(attrMember),
		MemberUID: e.GetEqualFoldAttributeValues(attrMemberUID),
		MemberOf:  e.GetEqualFoldAttributeValues(attrMemberOf)}
}

// Users searches the user base with filter.
func (s *Session) Users(ctx context.Context, filter string) ([]User, error) {
	var users []User
	err := s.users(ctx, filter, nil, func(u User, _ *ldap.Entry) { users = append(users, u) })
	return users, err
}

// users searches the user base with filter, reading extra attributes too.
func (s *Session) users(ctx context.Context, filter string, extra []string, each func(User, *ldap.Entry)) error {
	return s.search(ctx, s.cfg.UserBaseDN, ldap.ScopeWholeSubtree, filter, append(s.cfg.userAttrs(), extra...), nil,
		func(e *ldap.Entry) { each(s.cfg.toUser(e), e) })
}

// Groups searches the group base with filter.
func (s *Session) Groups(ctx context.Context, filter string) ([]Group, error) {
	var groups []Group
	err := s.groups(ctx, filter, nil, func(g Group, _ *ldap.Entry) { groups = append(groups, g) })
	return groups, err
}

// groups searches the group base with filter, reading extra attributes too.
func (s *Session) groups(ctx context.Context, filter string, extra []string, each func(Group, *ldap.Entry)) error {
	attrs, ranged := s.cfg.groupAttrs()
	return s.search(ctx, s.cfg.GroupBaseDN, ldap.ScopeWholeSubtree, filter, append(attrs, extra...), ranged,
		func(e *ldap.Entry) { each(s.cfg.toGroup(e), e) })
}

// Snapshot holds the users and groups of several views, read on one
// connection in one pass, so every output is computed from the same data.
type Snapshot struct {
	// Users and Groups by filter.
	Users  map[string][]User
	Groups map[string][]Group
	// users are the cached users by filter and DN key (ReadCached only).
	users map[string]map[string]*User
}

// Read searches each distinct user and group filter of views once.
func (s *Session) Read(ctx context.Context, views []View) (*Snapshot, error) {
	snap := &Snapshot{Users: map[string][]User{}, Groups: map[string][]Group{}}
	for _, v := range views {
		if _, ok := snap.Users[v.UserFilter]; !ok {
			u, err := s.Users(ctx, v.UserFilter)
			if err != nil {
				return nil, err
			}
			snap.Users[v.UserFilter] = u
		}
		if _, ok := snap.Groups[v.GroupFilter]; !ok {
			g, err := s.Groups(ctx, v.GroupFilter)
			if err != nil {
				return nil, err
			}
			snap.Groups[v.GroupFilter] = g
		}
	}
	return snap, nil
}

// ReadCached opens a session, reads views through cache (Session.ReadCached)
// and closes it.
func ReadCached(ctx context.Context, cfg *Config, views []View, cache *Cache, o ReadOptions) (*Snapshot, ReadStats, int64, error) {
	s, err := Open(ctx, cfg)
	if err != nil {
		return nil, ReadStats{}, 0, err
	}
	defer func() { _ = s.Close() }()
	s.openPeer = func() (*Session, error) { return Open(ctx, cfg) }
	snap, st, err := s.ReadCached(ctx, views, cache, o)
	return snap, st, s.Requests(), err
}

// ReadAll opens a session, reads views and closes it.
func ReadAll(ctx context.Context, cfg *Config, views []View) (*Snapshot, int64, error) {
	s, err := Open(ctx, cfg)
	if err != nil {
		return nil, 0, err
	}
	defer func() { _ = s.Close() }()
	snap, err := s.Read(ctx, views)
	return snap, s.Requests(), err
}
