package bootstrap

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
)

// Mapping is where an object kind lives in the API.
type Mapping struct {
	Resource   schema.GroupVersionResource
	Namespaced bool
}

// Mapper maps template kinds to resources. The kinds of the default
// template are known without asking the API server, so a login costs no
// discovery requests; other kinds are discovered once, on first use.
type Mapper struct {
	known    map[schema.GroupVersionKind]Mapping
	fallback meta.RESTMapper
}

// NewMapper returns a mapper that discovers unknown kinds through dc (nil:
// only the built-in kinds are allowed).
func NewMapper(dc discovery.DiscoveryInterface) *Mapper {
	m := &Mapper{known: map[schema.GroupVersionKind]Mapping{}}
	add := func(group, version, kind, resource string, namespaced bool) {
		m.known[schema.GroupVersionKind{Group: group, Version: version, Kind: kind}] =
			Mapping{Resource: schema.GroupVersionResource{Group: group, Version: version, Resource: resource}, Namespaced: namespaced}
	}
	add("", "v1", "Namespace", "namespaces", false)
	add("", "v1", "ServiceAccount", "serviceaccounts", true)
	add("", "v1", "Secret", "secrets", true)
	add("", "v1", "ConfigMap", "configmaps", true)
	add("", "v1", "ResourceQuota", "resourcequotas", true)
	add("", "v1", "LimitRange", "limitranges", true)
	add("rbac.authorization.k8s.io", "v1", "RoleBinding", "rolebindings", true)
	add("rbac.authorization.k8s.io", "v1", "Role", "roles", true)
	add("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", true)
	if dc != nil {
		m.fallback = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	}
	return m
}

// Map returns the mapping of gvk.
func (m *Mapper) Map(gvk schema.GroupVersionKind) (Mapping, error) {
	if mp, ok := m.known[gvk]; ok {
		return mp, nil
	}
	if m.fallback == nil {
		return Mapping{}, fmt.Errorf("unknown kind %s", gvk)
	}
	rm, err := m.fallback.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return Mapping{}, fmt.Errorf("map kind %s: %w", gvk, err)
	}
	return Mapping{Resource: rm.Resource, Namespaced: rm.Scope.Name() == meta.RESTScopeNameNamespace}, nil
}
