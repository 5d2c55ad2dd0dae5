package ldapdir

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"
)

// Change tracking modes: how a later read finds what changed since the last.
const (
	// TrackNone: the server offers no change attribute; every read is full.
	TrackNone = "none"
	// TrackCSN: OpenLDAP's entryCSN (and contextCSN on the naming context,
	// kept by the syncprov overlay, as a cheap "anything changed?" check).
	TrackCSN = "entryCSN"
	// TrackUSN: Active Directory's uSNChanged (and the root DSE's
	// highestCommittedUSN as the cheap check).
	TrackUSN = "uSNChanged"
	// TrackTimestamp: modifyTimestamp (RFC 4512), one-second resolution.
	TrackTimestamp = "modifyTimestamp"
)

// Cache keeps the entries of the last read between passes, so that a later
// read fetches only the entries changed since (SSSD's approach): a search
// for the tracking attribute at or above the highest value seen, plus a
// DN-only search (attributes "1.1") per filter that finds deletions and
// renames. The zero value is empty; the first read through it is full.
type Cache struct {
	key    string
	mode   string
	marker string // the server-wide change marker of the last read ("" if none)
	since  string // the highest tracking value seen
	// users and groups point into snap's lists: one copy of each entry.
	users  map[string]map[string]*User
	groups map[string]map[string]*Group
	snap   *Snapshot
	fullAt time.Time
}

// Mode returns the tracking mode chosen at the last full read ("" before one).
func (c *Cache) Mode() string { return c.mode }

// ReadOptions control a cached read.
type ReadOptions struct {
	// Now is the current time (an injected clock's).
	Now time.Time
	// FullEvery forces a full read when the last one is at least this old;
	// 0 means every read is full.
	FullEvery time.Duration
}

// ReadStats describe one cached read.
type ReadStats struct {
	// Full is set when every entry was read; Reason says why.
	Full   bool
	Reason string
	// Unchanged is set when the server's change marker had not moved: no
	// entry was read and the snapshot is the previous one.
	Unchanged bool
	// Mode is the tracking mode in use after the read.
	Mode string
	// Changed and Deleted count entries re-read and dropped by an
	// incremental read.
	Changed, Deleted int
	// Delta lists what an incremental read changed (nil for a full or an
	// unchanged read), for ResolveChanges.
	Delta *Delta
}

// Delta is what an incremental read changed, per filter: each entry
// changed, added (Old nil) or deleted (New nil), keyed by filter.
type Delta struct {
	Users  map[string][]UserChange
	Groups map[string][]GroupChange
}

// UserChange is one user entry before and after a read (nil: absent).
type UserChange struct{ Old, New *User }

// GroupChange is one group entry before and after a read (nil: absent).
type GroupChange struct{ Old, New *Group }

// Reasons for a full read.
const (
	FullFirst     = "first read"
	FullConfig    = "configuration changed"
	FullNoMarkers = "the server offers no change tracking"
	FullInterval  = "full resync interval"
	FullDisabled  = "incremental reads disabled"
	FullUnknown   = "entries appeared that the change search did not return"
	// FullReferences: the overlays that rewrite references to a deleted or
	// renamed entry (refint, memberof) leave no change marker on the
	// entries they rewrite, so with DN references a deletion is read in full.
	FullReferences = "entries were deleted or renamed and other entries refer to them by DN"
	// FullMemberOf: a user's memberOf changes with the group (a back-link),
	// without a change marker on the user.
	FullMemberOf = "groups changed and users' memberOf follows them without a change marker"
)

// needFull is an incremental read that cannot be completed.
type needFull struct{ reason string }

func (e *needFull) Error() string { return "incremental read needs a full read: " + e.reason }
func (e *needFull) Unwrap() error { return errNeedFull }

var errNeedFull = errors.New("incremental read needs a full read")

// key fingerprints what a read depends on; a change forces a full read.
func (c *Config) cacheKey(views []View) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%s|%s|%v|%v|%+v|%+v|%v", c.URL, c.BindDN, c.UserBaseDN, c.GroupBaseDN, c.Scheme, c.Nested, c.UserAttrs, c.GroupAttrs, c.Paged)
	for _, v := range views {
		b.WriteString("|" + v.UserFilter + "|" + v.GroupFilter)
	}
	return b.String()
}

// changeMarker reads the server's cheap "anything changed?" marker: Active
// Directory's highestCommittedUSN on the root DSE, or OpenLDAP's contextCSN
// on the naming contexts holding the user and group bases (syncprov). ad
// reports an Active Directory root DSE. marker is "" when there is none.
func (s *Session) changeMarker(ctx context.Context) (marker string, ad bool, err error) {
	var contexts []string
	err = s.search(ctx, "", ldap.ScopeBaseObject, "(objectClass=*)", []string{"highestCommittedUSN", "namingContexts"}, nil, func(e *ldap.Entry) {
		if v := first(e, "highestCommittedUSN"); v != "" {
			marker, ad = "usn:"+v, true
		}
		contexts = e.GetEqualFoldAttributeValues("namingContexts")
	})
	if err != nil || ad {
		return marker, ad, err
	}
	var csns []string
	seen := map[string]bool{}
	for _, base := range []string{s.cfg.UserBaseDN, s.cfg.GroupBaseDN} {
		nc := namingContextOf(contexts, base)
		if nc == "" || seen[nc] {
			continue
		}
		seen[nc] = true
		found := false
		err := s.search(ctx, nc, ldap.ScopeBaseObject, "(objectClass=*)", []string{"contextCSN"}, nil, func(e *ldap.Entry) {
			v := e.GetEqualFoldAttributeValues("contextCSN")
			found = len(v) > 0
			csns = append(csns, v...)
		})
		if err != nil {
			return "", false, err
		}
		if !found {
			return "", false, nil // one base without a marker: no cheap check
		}
	}
	if len(csns) == 0 {
		return "", false, nil
	}
	slices.Sort(csns)
	return "csn:" + strings.Join(csns, ","), false, nil
}

// namingContextOf returns the naming context that base is in ("" if none).
func namingContextOf(contexts []string, base string) string {
	b, ok := normDN(base)
	if !ok {
		return ""
	}
	best := ""
	for _, c := range contexts {
		n, ok := normDN(c)
		if !ok || n == "" {
			continue
		}
		if (b == n || strings.HasSuffix(b, ","+n)) && len(c) > len(best) {
			best = c
		}
	}
	return best
}

// trackAttrs are the operational attributes read with every entry to find
// the tracking mode and its highest value.
func trackAttrs(ad bool) []string {
	if ad {
		return []string{TrackUSN}
	}
	return []string{TrackCSN, TrackTimestamp}
}

// tracker finds the mode every entry supports and the highest value of it.
type tracker struct {
	attrs   []string
	counts  map[string]int
	max     map[string]string
	entries int
}

func newTracker(ad bool) *tracker {
	return &tracker{attrs: trackAttrs(ad), counts: map[string]int{}, max: map[string]string{}}
}

func (t *tracker) see(e *ldap.Entry) {
	t.entries++
	for _, a := range t.attrs {
		v := first(e, a)
		if v == "" {
			continue
		}
		t.counts[a]++
		if later(a, v, t.max[a]) {
			t.max[a] = v
		}
	}
}

// later reports whether tracking value a is after b ("" is before all).
func later(mode, a, b string) bool {
	if b == "" {
		return a != ""
	}
	if mode == TrackUSN {
		x, errA := strconv.ParseUint(a, 10, 64)
		y, errB := strconv.ParseUint(b, 10, 64)
		if errA == nil && errB == nil {
			return x > y
		}
	}
	return a > b
}

// merge adds o's entries to t's.
func (t *tracker) merge(o *tracker) *tracker {
	t.entries += o.entries
	for _, a := range t.attrs {
		t.counts[a] += o.counts[a]
		if later(a, o.max[a], t.max[a]) {
			t.max[a] = o.max[a]
		}
	}
	return t
}

// both runs users on s and groups on a second connection at the same time
// (a full read of a large directory spends most of its time waiting for
// the server), or one after the other when no second connection opens.
func (s *Session) both(users, groups func(*Session) error) error {
	var peer *Session
	if s.openPeer != nil {
		if p, err := s.openPeer(); err == nil {
			peer = p
			defer func() {
				s.requests.Add(peer.Requests())
				_ = peer.Close()
			}()
		}
	}
	if peer == nil {
		if err := users(s); err != nil {
			return err
		}
		return groups(s)
	}
	gerr := make(chan error, 1)
	go func() { gerr <- groups(peer) }()
	uerr := users(s)
	return errors.Join(uerr, <-gerr)
}

// mode picks the first tracking attribute every entry carries.
func (t *tracker) mode() (string, string) {
	if t.entries == 0 {
		return TrackNone, ""
	}
	for _, a := range t.attrs {
		if t.counts[a] == t.entries {
			return a, t.max[a]
		}
	}
	return TrackNone, ""
}

// ReadCached reads views through cache: a full read the first time, when the
// configuration changed, when the server offers no change tracking or when
// the last full read is FullEvery old; otherwise nothing when the server's
// change marker has not moved, or only the changed entries plus a DN-only
// search per filter for deletions and renames. The snapshot it returns is
// shared with the cache: do not modify it.
func (s *Session) ReadCached(ctx context.Context, views []View, cache *Cache, o ReadOptions) (*Snapshot, ReadStats, error) {
	key := s.cfg.cacheKey(views)
	marker, ad, err := s.changeMarker(ctx)
	if err != nil {
		return nil, ReadStats{}, err
	}
	var reason string
	switch {
	case cache.snap == nil:
		reason = FullFirst
	case cache.key != key:
		reason = FullConfig
	case o.FullEvery <= 0:
		reason = FullDisabled
	case cache.mode == TrackNone:
		reason = FullNoMarkers
	case o.Now.Sub(cache.fullAt) >= o.FullEvery:
		reason = FullInterval
	}
	if reason == "" {
		if marker != "" && marker == cache.marker {
			return cache.snap, ReadStats{Unchanged: true, Mode: cache.mode}, nil
		}
		st, err := s.readChanges(ctx, views, cache)
		if err == nil {
			cache.marker = marker
			return cache.snap, st, nil
		}
		var nf *needFull
		if !errors.As(err, &nf) {
			return nil, ReadStats{}, err
		}
		reason = nf.reason
	}
	ut, gt := newTracker(ad), newTracker(ad)
	c := &Cache{key: key, marker: marker, users: map[string]map[string]*User{}, groups: map[string]map[string]*Group{}, fullAt: o.Now}
	readUsers := func(s *Session) error {
		for _, v := range views {
			if _, ok := c.users[v.UserFilter]; ok {
				continue
			}
			m := map[string]*User{}
			if err := s.users(ctx, v.UserFilter, ut.attrs, func(u User, e *ldap.Entry) { m[cacheKeyOf(u.DN)] = &u; ut.see(e) }); err != nil {
				return err
			}
			c.users[v.UserFilter] = m
		}
		return nil
	}
	readGroups := func(s *Session) error {
		for _, v := range views {
			if _, ok := c.groups[v.GroupFilter]; ok {
				continue
			}
			m := map[string]*Group{}
			if err := s.groups(ctx, v.GroupFilter, gt.attrs, func(g Group, e *ldap.Entry) { m[cacheKeyOf(g.DN)] = &g; gt.see(e) }); err != nil {
				return err
			}
			c.groups[v.GroupFilter] = m
		}
		return nil
	}
	if err := s.both(readUsers, readGroups); err != nil {
		return nil, ReadStats{}, err
	}
	t := ut.merge(gt)
	c.mode, c.since = t.mode()
	c.build()
	*cache = *c
	return c.snap, ReadStats{Full: true, Reason: reason, Mode: c.mode}, nil
}

// readChanges applies the entries changed since cache.since and the
// deletions to the cache.
func (s *Session) readChanges(ctx context.Context, views []View, cache *Cache) (ReadStats, error) {
	st := ReadStats{Mode: cache.mode}
	changed := fmt.Sprintf("(%s>=%s)", cache.mode, ldap.EscapeFilter(cache.since))
	// Nothing is applied to the cache before every search has succeeded:
	// a failed read leaves it as it was.
	type side struct {
		t                *tracker
		changed, deleted int
		apply            []func()
	}
	newSide := func() *side {
		t := newTracker(cache.mode == TrackUSN)
		t.attrs = []string{cache.mode}
		return &side{t: t}
	}
	us, gs := newSide(), newSide()
	delta := &Delta{Users: map[string][]UserChange{}, Groups: map[string][]GroupChange{}}
	readUsers := func(s *Session) error {
		for _, v := range views {
			f := v.UserFilter
			if _, ok := delta.Users[f]; ok {
				continue
			}
			old := cache.users[f]
			upserts := map[string]User{}
			var changes []UserChange
			err := s.users(ctx, "(&"+f+changed+")", us.t.attrs, func(u User, e *ldap.Entry) {
				k := cacheKeyOf(u.DN)
				upserts[k] = u
				us.t.see(e)
				if first(e, cache.mode) != cache.since { // not the boundary entry seen last time
					us.changed++
				}
				if o, ok := old[k]; !ok || !sameUser(*o, u) {
					changes = append(changes, UserChange{Old: copyOf(o), New: &u})
				}
			})
			if err != nil {
				return err
			}
			live, err := s.liveKeys(ctx, s.cfg.UserBaseDN, f)
			if err != nil {
				return err
			}
			gone, err := vanished(old, upserts, live)
			if err != nil {
				return err
			}
			for _, k := range gone {
				if o, ok := old[k]; ok {
					changes = append(changes, UserChange{Old: copyOf(o)})
				}
			}
			us.deleted += len(gone)
			delta.Users[f] = changes
			us.apply = append(us.apply, func() { applyChanges(cache.users, f, upserts, gone) })
		}
		return nil
	}
	readGroups := func(s *Session) error {
		for _, v := range views {
			f := v.GroupFilter
			if _, ok := delta.Groups[f]; ok {
				continue
			}
			old := cache.groups[f]
			upserts := map[string]Group{}
			var changes []GroupChange
			err := s.groups(ctx, "(&"+f+changed+")", gs.t.attrs, func(g Group, e *ldap.Entry) {
				k := cacheKeyOf(g.DN)
				upserts[k] = g
				gs.t.see(e)
				if first(e, cache.mode) != cache.since {
					gs.changed++
				}
				if o, ok := old[k]; !ok || !sameGroup(*o, g) {
					changes = append(changes, GroupChange{Old: copyOf(o), New: &g})
				}
			})
			if err != nil {
				return err
			}
			live, err := s.liveKeys(ctx, s.cfg.GroupBaseDN, f)
			if err != nil {
				return err
			}
			gone, err := vanished(old, upserts, live)
			if err != nil {
				return err
			}
			for _, k := range gone {
				if o, ok := old[k]; ok {
					changes = append(changes, GroupChange{Old: copyOf(o)})
				}
			}
			gs.deleted += len(gone)
			delta.Groups[f] = changes
			gs.apply = append(gs.apply, func() { applyChanges(cache.groups, f, upserts, gone) })
		}
		return nil
	}
	// Users and groups on two connections at once: most of an incremental
	// read is waiting for the server's DN-only searches.
	if err := s.both(readUsers, readGroups); err != nil {
		var nf *needFull
		if errors.As(err, &nf) {
			return st, nf
		}
		return st, err
	}
	st.Changed, st.Deleted = us.changed+gs.changed, us.deleted+gs.deleted
	switch {
	case st.Deleted > 0 && s.cfg.Scheme != SchemeMemberUID:
		return st, &needFull{FullReferences}
	case gs.changed > 0 && s.cfg.Scheme == SchemeMemberOf:
		return st, &needFull{FullMemberOf}
	}
	for _, f := range append(us.apply, gs.apply...) {
		f()
	}
	if m := us.t.merge(gs.t).max[cache.mode]; later(cache.mode, m, cache.since) {
		cache.since = m
	}
	cache.build()
	st.Delta = delta
	return st, nil
}

// vanished returns the keys of old that live no longer holds (deleted,
// renamed, or out of the filter now); an entry live holds that neither old
// nor the change search (upserts) has matched the filter without a change
// the change search saw, which needs a full read.
func vanished[O, U any](old map[string]O, upserts map[string]U, live map[string]bool) ([]string, error) {
	for k := range live {
		if _, ok := old[k]; !ok {
			if _, ok := upserts[k]; !ok {
				return nil, &needFull{FullUnknown}
			}
		}
	}
	var gone []string
	for k := range old {
		if !live[k] {
			gone = append(gone, k)
		}
	}
	for k := range upserts {
		if _, ok := old[k]; !ok && !live[k] {
			gone = append(gone, k) // added and removed again between the two searches
		}
	}
	return gone, nil
}

// applyChanges writes an incremental read's upserts and removals into the
// cached entries of filter f.
func applyChanges[V any](cached map[string]map[string]*V, f string, upserts map[string]V, gone []string) {
	m := cached[f]
	if m == nil {
		m = map[string]*V{}
		cached[f] = m
	}
	for k, v := range upserts {
		m[k] = &v
	}
	for _, k := range gone {
		delete(m, k)
	}
}

// copyOf returns a copy of *p (nil for nil): a delta's entry, apart from
// the cache's.
func copyOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

func sameUser(a, b User) bool {
	return a.DN == b.DN && a.Name == b.Name && a.UID == b.UID && a.GID == b.GID && a.Home == b.Home && slices.Equal(a.MemberOf, b.MemberOf)
}

func sameGroup(a, b Group) bool {
	return a.DN == b.DN && a.Name == b.Name && a.GID == b.GID && slices.Equal(a.Member, b.Member) &&
		slices.Equal(a.MemberUID, b.MemberUID) && slices.Equal(a.MemberOf, b.MemberOf)
}

// liveKeys runs a DN-only search (attributes "1.1") of filter and returns
// the keys of the entries it matches now.
func (s *Session) liveKeys(ctx context.Context, base, filter string) (map[string]bool, error) {
	keep := map[string]bool{}
	err := s.search(ctx, base, ldap.ScopeWholeSubtree, filter, []string{"1.1"}, nil, func(e *ldap.Entry) {
		keep[cacheKeyOf(e.DN)] = true
	})
	return keep, err
}

// cacheKeyOf is the cache key of an entry: its normalised DN, or the raw DN
// marked as such when it does not parse.
func cacheKeyOf(dn string) string {
	if k, ok := normDN(dn); ok {
		return k
	}
	return "\x00" + dn
}

// build rebuilds the snapshot from the cached entries, in DN order so that
// a snapshot does not depend on map order.
func (c *Cache) build() {
	snap := &Snapshot{Users: map[string][]User{}, Groups: map[string][]Group{}, users: c.users}
	for f, m := range c.users {
		keys := slices.Sorted(maps.Keys(m))
		l := make([]User, len(keys))
		for i, k := range keys {
			l[i] = *m[k]
			m[k] = &l[i]
		}
		snap.Users[f] = l
	}
	for f, m := range c.groups {
		keys := slices.Sorted(maps.Keys(m))
		l := make([]Group, len(keys))
		for i, k := range keys {
			l[i] = *m[k]
			m[k] = &l[i]
		}
		snap.Groups[f] = l
	}
	c.snap = snap
}
