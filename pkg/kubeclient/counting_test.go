package kubeclient

import "testing"

func TestResourceOf(t *testing.T) {
	tests := map[string]string{
		"/api/v1/pods":                                       "pods",
		"/api/v1/namespaces/user-a/pods/p1":                  "pods",
		"/api/v1/namespaces/user-a":                          "namespaces",
		"/api/v1/namespaces":                                 "namespaces",
		"/apis/coordination.k8s.io/v1/namespaces/x/leases/l": "leases",
		"/apis/apps/v1/deployments":                          "deployments",
	}
	for in, want := range tests {
		if got := resourceOf(in); got != want {
			t.Errorf("resourceOf(%q) = %q, want %q", in, got, want)
		}
	}
}
