package mapsync

import (
	"maps"
	"testing"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
)

// TestAnnotationsMatch proves the allocation-free comparison a pass makes
// for every user namespace agrees with comparing desiredAnnotations' values.
func TestAnnotationsMatch(t *testing.T) {
	ids := []ldapdir.Identity{
		{User: "a", UID: "1", GID: "1", Home: "/h/a", GIDs: []string{"1", "10", "200"}, Groups: []string{"a", "g10", "g200"}},
		{User: "b", UID: "2", GID: "2", GIDs: []string{"2"}, Groups: []string{}},
		{User: "c", UID: "3", GID: "3", Home: "/h/c", GIDs: []string{"3", "30"}, Groups: nil},
	}
	reference := func(cur map[string]string, id ldapdir.Identity) bool {
		want := desiredAnnotations(id)
		for _, k := range OwnedAnnotations() {
			if v, ok := cur[k]; !ok || v != want[k] {
				return false
			}
		}
		return true
	}
	for _, id := range ids {
		exact := desiredAnnotations(id)
		exact[identity.UserAnnotation] = id.User
		variants := map[string]map[string]string{"exact": exact, "none": nil}
		for _, k := range OwnedAnnotations() {
			for name, v := range map[string]string{"missing": "", "empty": "", "trailing comma": exact[k] + ",", "prefix": ",1,", "cut": exact[k][:len(exact[k])/2],
				"one more": exact[k] + "9,", "no delimiters": id.UID, "doubled": exact[k] + exact[k]} {
				m := maps.Clone(exact)
				if name == "missing" {
					delete(m, k)
				} else {
					m[k] = v
				}
				variants[k+" "+name] = m
			}
		}
		for name, cur := range variants {
			if got, want := annotationsMatch(cur, id), reference(cur, id); got != want {
				t.Errorf("user %s, %s: annotationsMatch(%v) = %v, want %v", id.User, name, cur, got, want)
			}
		}
		if !annotationsMatch(exact, id) {
			t.Errorf("user %s: exact annotations do not match", id.User)
		}
	}
}
