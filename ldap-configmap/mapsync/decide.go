package mapsync

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/ldapdir"
)

// A pass reads (LDAP, the ConfigMaps and namespaces as they are), plans
// (Decide: pure, no I/O, no metrics) and applies the plan. State is what
// was read, Plan what to do.

// State is what a pass read.
type State struct {
	// Users is the number of distinct users LDAP gave, over every view.
	Users int
	// ConfigMaps are the enabled mappers' maps, in --mappers order.
	ConfigMaps []ConfigMapState
	// Annotations is nil without --namespace-annotations.
	Annotations *AnnotationState
}

// ConfigMapState is one mapper's map as it is and as rendered.
type ConfigMapState struct {
	Mapper string
	// Current is the ConfigMap as it is (nil: absent).
	Current *corev1.ConfigMap `json:",omitempty"`
	// Desired is the data rendered from LDAP.
	Desired map[string]string
	// Diff from Current's data to Desired, when already known (the
	// incremental rendering, or an earlier pass); nil: Decide computes it.
	Diff *Diff `json:",omitempty"`
}

// AnnotationState is what the namespace annotations are decided from.
type AnnotationState struct {
	Prefix string
	// Namespaces are the annotations of every namespace not being deleted.
	Namespaces map[string]map[string]string
	// Identities are keyed by namespace name; Collisions are the names
	// several LDAP entries map to (left as they are).
	Identities map[string]ldapdir.Identity
	Collisions map[string][]string `json:",omitempty"`
}

// Plan is what a pass does.
type Plan struct {
	// Refused holds the count guards' refusals (an empty LDAP answer, a
	// large drop): when set, nothing is written.
	Refused []error
	// ConfigMaps, in --mappers order.
	ConfigMaps []ConfigMapPlan
	// Annotations is nil without --namespace-annotations.
	Annotations *AnnotationPlan
}

// ConfigMapPlan is what to do with one map.
type ConfigMapPlan struct {
	Mapper, Name string
	// Current is the map as it is (nil: absent), Desired its new data and
	// Diff the change between their data.
	Current *corev1.ConfigMap
	Desired map[string]string
	Diff    Diff
	// Size is the data's size (the API server's 1 MiB limit), Stored the
	// object's as etcd will store it.
	Size, Stored int
	// TooLarge is the size guard's refusal: this map alone is not written.
	TooLarge error
	// Write is set when the map must be written: created, changed, taken
	// over (no managed-by label) or carrying managedFields to reset.
	Write bool
}

// currentData is the map's data as it is (nil when absent).
func (c ConfigMapPlan) currentData() map[string]string {
	if c.Current == nil {
		return nil
	}
	return c.Current.Data
}

// AnnotationPlan is what to do with the namespace annotations.
type AnnotationPlan struct {
	Changes []AnnotationChange
	// Current counts the user namespaces annotated now, Desired those that
	// will be (both without the colliding ones).
	Current, Desired int
	// before are the namespaces' annotations as read (for --dry-run).
	before map[string]map[string]string
}

// Decide plans a pass from what it read, with the guards: every map's diff,
// size and stored size; a count refusal (an empty LDAP answer, or more than
// --max-drop-fraction of an output's users gone) holds back every write; a
// map too large is refused on its own; the annotation changes. It does no
// I/O and records nothing; namespace is the ConfigMaps' namespace.
func Decide(namespace string, g Guard, s State) Plan {
	var plan Plan
	for _, c := range s.ConfigMaps {
		cp := ConfigMapPlan{Mapper: c.Mapper, Name: ConfigMapName(c.Mapper), Current: c.Current, Desired: c.Desired}
		if c.Diff != nil {
			cp.Diff = *c.Diff
		} else {
			cp.Diff = DiffData(cp.currentData(), c.Desired)
		}
		cp.Size = DataSize(c.Desired)
		cp.Stored = StoredSize(desiredConfigMap(namespace, cp))
		labelled := c.Current != nil && c.Current.Labels[identity.ManagedByLabel] == Tool.Name
		cp.Write = c.Current == nil || !labelled || !cp.Diff.Empty() || len(c.Current.ManagedFields) > 0
		cp.TooLarge = g.CheckSize("ConfigMap "+cp.Name, cp.Size, cp.Stored)
		plan.ConfigMaps = append(plan.ConfigMaps, cp)
	}
	if a := s.Annotations; a != nil {
		ap := &AnnotationPlan{Changes: PlanAnnotations(a.Prefix, a.Namespaces, a.Identities, a.Collisions), before: a.Namespaces}
		for name, ann := range a.Namespaces {
			if _, ok := a.Collisions[name]; ok || !strings.HasPrefix(name, a.Prefix) {
				continue // a colliding namespace is left as it is, and not counted
			}
			if _, ok := ann[identity.UIDAnnotation]; ok {
				ap.Current++
			}
			if _, ok := a.Identities[name]; ok {
				ap.Desired++
			}
		}
		plan.Annotations = ap
	}
	// Count guards: one refusal holds back every write.
	if s.Users == 0 && !g.AllowEmpty {
		current := 0 // what the outputs hold now, for the message
		for _, c := range plan.ConfigMaps {
			current = max(current, len(c.currentData()))
		}
		if plan.Annotations != nil {
			current = max(current, plan.Annotations.Current)
		}
		plan.Refused = append(plan.Refused, g.CheckCount("all outputs", current, 0))
		return plan
	}
	for _, c := range plan.ConfigMaps {
		if err := g.CheckCount("ConfigMap "+c.Name, len(c.currentData()), len(c.Desired)); err != nil {
			plan.Refused = append(plan.Refused, err)
		}
	}
	// LDAP answered with users (checked above), so no annotated namespace
	// yet is not an empty answer: no user has a namespace so far. Only a
	// drop from namespaces annotated now is guarded.
	if a := plan.Annotations; a != nil && a.Current > 0 {
		if err := g.CheckCount("namespace annotations", a.Current, a.Desired); err != nil {
			plan.Refused = append(plan.Refused, err)
		}
	}
	return plan
}

// desiredConfigMap is the object the tool writes: the current one's
// metadata (other labels and annotations kept) with the managed-by label,
// the desired data, and managedFields reset to one empty entry, which makes
// the API server store none. Server-side apply would store a managedFields
// entry listing every key, which at 20,000 users pushes a map that fits the
// 1 MiB data limit over etcd's request limit; a whole-object update with
// optimistic concurrency needs no field ownership.
func desiredConfigMap(namespace string, c ConfigMapPlan) *corev1.ConfigMap {
	obj := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: namespace}}
	if c.Current != nil {
		obj.Labels = maps.Clone(c.Current.Labels)
		obj.Annotations = c.Current.Annotations
		obj.ResourceVersion = c.Current.ResourceVersion
		obj.UID = c.Current.UID
		obj.CreationTimestamp = c.Current.CreationTimestamp
	}
	if obj.Labels == nil {
		obj.Labels = map[string]string{}
	}
	obj.Labels[identity.ManagedByLabel] = Tool.Name
	obj.ManagedFields = []metav1.ManagedFieldsEntry{{}}
	obj.Data = c.Desired
	return obj
}
