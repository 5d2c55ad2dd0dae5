package mapsync

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/kubehpc/kubehpc/ldap-configmap/directory"
	"github.com/kubehpc/kubehpc/pkg/identity"
)

// ConfigMapName returns the ConfigMap a mapper writes.
func ConfigMapName(mapper string) string { return mapper + "-map" }

// Render returns a mapper's ConfigMap data from identities keyed by
// namespace name.
func Render(mapper string, ids map[string]directory.Identity) map[string]string {
	out := make(map[string]string, len(ids))
	for key, id := range ids {
		switch mapper {
		case directory.MapperUID:
			out[key] = id.UID
		case directory.MapperGID:
			out[key] = id.GID
		case directory.MapperGIDs:
			out[key] = jsonList(id.GIDs)
		case directory.MapperGroups, directory.MapperAllGroups:
			out[key] = jsonList(id.Groups)
		case directory.MapperHome:
			if id.Home != "" {
				out[key] = id.Home
			}
		}
	}
	return out
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
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

// CheckSize refuses data over MaxBytes.
func (g Guard) CheckSize(output string, size int) error {
	if size > g.MaxBytes {
		return &RefusedError{Output: output, Reason: RefusedSize,
			Detail: fmt.Sprintf("data is %d bytes, over the limit of %d; use --namespace-annotations, which has no size limit, and disable this mapper", size, g.MaxBytes)}
	}
	return nil
}

// AnnotationChange is what to do to one namespace.
type AnnotationChange struct {
	Namespace string
	// Set are the annotations to apply; nil with Remove means remove them.
	Set    map[string]string
	Remove bool
	// User is the user the namespace belonged to (for removal logs).
	User string
}

// PlanAnnotations compares the identity annotations of existing namespaces
// (name -> annotations) with the identities (keyed by namespace name) and
// returns the changes: set where missing or different, remove where the
// namespace carries identity annotations but its user is not in LDAP. Only
// namespaces starting with prefix are considered; none is ever created.
func PlanAnnotations(prefix string, namespaces map[string]map[string]string, ids map[string]directory.Identity) []AnnotationChange {
	owned := identity.IdentityAnnotations()
	var out []AnnotationChange
	names := slices.Sorted(maps.Keys(namespaces))
	for _, ns := range names {
		cur := namespaces[ns]
		if len(ns) <= len(prefix) || ns[:len(prefix)] != prefix {
			continue
		}
		if id, ok := ids[ns]; ok {
			want := directory.Annotations(id)
			for _, k := range owned {
				if v, ok := cur[k]; !ok || v != want[k] {
					out = append(out, AnnotationChange{Namespace: ns, Set: want, User: id.User})
					break
				}
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
