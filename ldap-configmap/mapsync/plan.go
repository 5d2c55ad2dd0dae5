package mapsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
)

// ConfigMapName returns the ConfigMap a mapper writes.
func ConfigMapName(mapper string) string { return mapper + "-map" }

// Render returns a mapper's ConfigMap data from identities keyed by
// namespace name.
func Render(mapper string, ids map[string]ldapdir.Identity) map[string]string {
	out := make(map[string]string, len(ids))
	for key, id := range ids {
		if v, ok := renderOne(mapper, id); ok {
			out[key] = v
		}
	}
	return out
}

// renderOne is one identity's value in a mapper's map (ok false: no key).
func renderOne(mapper string, id ldapdir.Identity) (string, bool) {
	switch mapper {
	case MapperUID:
		return id.UID, true
	case MapperGID:
		return id.GID, true
	case MapperGIDs:
		return jsonList(id.GIDs), true
	case MapperGroups, MapperAllGroups:
		return jsonList(id.Groups), true
	case MapperHome:
		return id.Home, id.Home != ""
	}
	return "", false
}

// ChangedKeys lists the keys whose identity differs between oldIDs and ids,
// added and removed ones included.
func ChangedKeys(oldIDs, ids map[string]ldapdir.Identity) []string {
	var out []string
	for key, id := range ids {
		if old, ok := oldIDs[key]; !ok || !sameIdentity(old, id) {
			out = append(out, key)
		}
	}
	for key := range oldIDs {
		if _, ok := ids[key]; !ok {
			out = append(out, key)
		}
	}
	return out
}

// RenderChanges is Render(mapper, ids) computed from oldData, which is
// Render(mapper, oldIDs), given changed = ChangedKeys(oldIDs, ids): only
// those keys are rendered again. It also returns the diff from oldData.
func RenderChanges(mapper string, oldData map[string]string, ids map[string]ldapdir.Identity, changed []string) (map[string]string, Diff) {
	data := maps.Clone(oldData)
	var d Diff
	for _, key := range changed {
		var v string
		ok := false
		if id, present := ids[key]; present {
			v, ok = renderOne(mapper, id)
		}
		old, had := data[key]
		switch {
		case ok && !had:
			data[key] = v
			d.Added = append(d.Added, key)
		case ok && old != v:
			data[key] = v
			d.Changed = append(d.Changed, key)
		case !ok && had:
			delete(data, key)
			d.Removed = append(d.Removed, key)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	return data, d
}

func sameIdentity(a, b ldapdir.Identity) bool {
	return a.User == b.User && a.UID == b.UID && a.GID == b.GID && a.Home == b.Home &&
		slices.Equal(a.GIDs, b.GIDs) && slices.Equal(a.Groups, b.Groups)
}

func jsonList(v []string) string {
	n := 2
	for _, s := range v {
		if !plainJSON(s) {
			b, _ := json.Marshal(v) // a []string always marshals
			return string(b)
		}
		n += len(s) + 3
	}
	// What json.Marshal gives, without reflection (a full sync renders
	// 100,000 lists).
	var b strings.Builder
	b.Grow(n)
	b.WriteByte('[')
	for i, s := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
	}
	b.WriteByte(']')
	return b.String()
}

// plainJSON reports whether json.Marshal writes s unchanged between quotes.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// DataSize is the size the API server counts against its 1 MiB limit.
func DataSize(data map[string]string) int {
	n := 0
	for k, v := range data {
		n += len(k) + len(v)
	}
	return n
}

// Diff is the change from current to desired data, keys sorted.
type Diff struct {
	Added, Removed, Changed []string
}

// Empty reports whether nothing changes.
func (d Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// DiffData compares two data maps.
func DiffData(current, desired map[string]string) Diff {
	var d Diff
	for k, v := range desired {
		cur, ok := current[k]
		switch {
		case !ok:
			d.Added = append(d.Added, k)
		case cur != v:
			d.Changed = append(d.Changed, k)
		}
	}
	for k := range current {
		if _, ok := desired[k]; !ok {
			d.Removed = append(d.Removed, k)
		}
	}
	sort.Strings(d.Added)
	sort.Strings(d.Removed)
	sort.Strings(d.Changed)
	return d
}

// Refusal reasons, the label values of refused_total.
const (
	RefusedEmpty = "empty"
	RefusedDrop  = "drop"
	RefusedSize  = "size"
)

// ErrRefused is wrapped by every guard refusal.
var ErrRefused = errors.New("refused to write")

// RefusedError says which guard refused which output.
type RefusedError struct {
	Output, Reason, Detail string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%v %s (%s): %s", ErrRefused, e.Output, e.Reason, e.Detail)
}

func (e *RefusedError) Unwrap() error { return ErrRefused }

// Guard holds the safety settings.
type Guard struct {
	MaxDropFraction            float64
	AllowEmpty, AllowLargeDrop bool
	MaxBytes                   int
	// MaxStoredBytes bounds the stored object; 0 means MaxStoredBytes.
	MaxStoredBytes int
}

// CheckCount refuses an output whose desired user count is zero, or lower
// than the current count by more than MaxDropFraction of it. current is the
// number of users the output holds now, desired after the write.
func (g Guard) CheckCount(output string, current, desired int) error {
	if desired == 0 {
		if g.AllowEmpty {
			return nil // an intended empty output is also an intended drop
		}
		return &RefusedError{Output: output, Reason: RefusedEmpty,
			Detail: fmt.Sprintf("LDAP gave no users (currently %d); set --allow-empty if this is intended", current)}
	}
	if current > 0 && desired < current && !g.AllowLargeDrop {
		drop := float64(current-desired) / float64(current)
		if drop > g.MaxDropFraction {
			return &RefusedError{Output: output, Reason: RefusedDrop,
				Detail: fmt.Sprintf("users would drop from %d to %d (%.1f%% > %.1f%%); set --allow-large-drop if this is intended",
					current, desired, 100*drop, 100*g.MaxDropFraction)}
		}
	}
	return nil
}

// CheckSize refuses a ConfigMap whose data is over MaxBytes (the API
// server's 1 MiB limit, or less) or whose stored object is over
// MaxStoredBytes (etcd's request limit, less its overhead).
func (g Guard) CheckSize(output string, size, stored int) error {
	if size > g.MaxBytes {
		return &RefusedError{Output: output, Reason: RefusedSize,
			Detail: fmt.Sprintf("data is %d bytes, over the limit of %d; use --namespace-annotations, which has no size limit, and disable this mapper", size, g.MaxBytes)}
	}
	if limit := g.maxStored(); stored > limit {
		return &RefusedError{Output: output, Reason: RefusedSize,
			Detail: fmt.Sprintf("the stored object is %d bytes, over etcd's limit of %d; use --namespace-annotations, which has no size limit, and disable this mapper", stored, limit)}
	}
	return nil
}

func (g Guard) maxStored() int {
	if g.MaxStoredBytes > 0 {
		return g.MaxStoredBytes
	}
	return MaxStoredBytes
}

// MaxStoredBytes is what an object may take in etcd: etcd's default
// --max-request-bytes (1.5 MiB) less room for the request's own framing.
const MaxStoredBytes = 1572864 - 8192

// storedOverhead covers what the API server adds to the object it stores
// (uid, creation time, resourceVersion, the type wrapper).
const storedOverhead = 256

// StoredSize is the size of cm as the API server stores it in etcd (its
// protobuf encoding, managedFields included) plus what the server adds.
func StoredSize(cm *corev1.ConfigMap) int {
	if len(cm.ManagedFields) == 1 && cm.ManagedFields[0].Manager == "" && cm.ManagedFields[0].FieldsV1 == nil {
		c := *cm              // shallow: the data is not copied
		c.ManagedFields = nil // the reset entry: nothing is stored
		return c.Size() + storedOverhead
	}
	return cm.Size() + storedOverhead
}

// OwnedAnnotations are the namespace annotations this tool writes and
// removes. The owner annotation (kubehpc.io/user) is not among them: it is
// namespace-bootstrap's, written once at creation with the login name, and
// this tool never writes, changes or removes it.
func OwnedAnnotations() []string {
	return []string{identity.UIDAnnotation, identity.GIDAnnotation, identity.GIDsAnnotation, identity.GroupsAnnotation, identity.HomeAnnotation}
}

// desiredAnnotations are the owned annotations of an identity.
func desiredAnnotations(id ldapdir.Identity) map[string]string {
	all := ldapdir.Annotations(id)
	out := make(map[string]string, len(all))
	for _, k := range OwnedAnnotations() {
		out[k] = all[k]
	}
	return out
}

// AnnotationChange is what to do to one namespace.
type AnnotationChange struct {
	Namespace string
	// Set are the annotations to apply; nil with Remove means remove them.
	Set    map[string]string
	Remove bool
	// User is the LDAP user the identity comes from, or (for a removal) the
	// namespace's owner annotation, for logs.
	User string
}

// PlanAnnotations compares the identity annotations of existing namespaces
// (name -> annotations) with the identities (keyed by namespace name) and
// returns the changes: set where missing or different, remove where the
// namespace carries identity annotations but its user is not in LDAP. Only
// namespaces starting with prefix are considered; none is ever created. A
// namespace in collisions (several LDAP entries map to it) is left exactly
// as it is: the sync cannot tell whose it is.
func PlanAnnotations(prefix string, namespaces map[string]map[string]string, ids map[string]ldapdir.Identity, collisions map[string][]string) []AnnotationChange {
	owned := OwnedAnnotations()
	var out []AnnotationChange
	names := slices.Sorted(maps.Keys(namespaces))
	for _, ns := range names {
		cur := namespaces[ns]
		if len(ns) <= len(prefix) || ns[:len(prefix)] != prefix {
			continue
		}
		if _, ok := collisions[ns]; ok {
			continue
		}
		if id, ok := ids[ns]; ok {
			if !annotationsMatch(cur, id) {
				out = append(out, AnnotationChange{Namespace: ns, Set: desiredAnnotations(id), User: id.User})
			}
			continue
		}
		for _, k := range owned {
			if _, ok := cur[k]; ok {
				out = append(out, AnnotationChange{Namespace: ns, Remove: true, User: cur[identity.UserAnnotation]})
				break
			}
		}
	}
	return out
}

// annotationsMatch reports whether cur holds every owned annotation of id
// with desiredAnnotations' value, without building them (a pass compares
// every user namespace).
func annotationsMatch(cur map[string]string, id ldapdir.Identity) bool {
	is := func(k, want string) bool {
		v, ok := cur[k]
		return ok && v == want
	}
	list := func(k string, want []string) bool {
		v, ok := cur[k]
		return ok && delimitedEqual(v, want)
	}
	return is(identity.UIDAnnotation, id.UID) && is(identity.GIDAnnotation, id.GID) && list(identity.GIDsAnnotation, id.GIDs) &&
		list(identity.GroupsAnnotation, id.Groups) && is(identity.HomeAnnotation, id.Home)
}

// delimitedEqual reports whether s == identity.DelimitedList(list).
func delimitedEqual(s string, list []string) bool {
	if s == "" || s[0] != ',' {
		return false
	}
	s = s[1:]
	if len(list) == 0 {
		return s == ","
	}
	for _, v := range list {
		if len(s) <= len(v) || s[:len(v)] != v || s[len(v)] != ',' {
			return false
		}
		s = s[len(v)+1:]
	}
	return s == ""
}
