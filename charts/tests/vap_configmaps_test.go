package tests

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestVAPConfigMaps installs the policies chart alone with identity from
// ldap-configmap's ConfigMaps (paramKind ConfigMap: one policy per map, since
// a binding has one param; membership in the JSON arrays is tested exactly as
// the quoted string "N") and proves on the API server: a well-formed pod is
// admitted, every attack of the catalogue is denied, and a user missing from
// the maps is denied with a message that says so. Its namespaces are named
// cm-* and carry no label: the rules apply by name.
func TestVAPConfigMaps(t *testing.T) {
	installUmbrella(t) // the umbrella's ClusterRoles; its policies do not select these namespaces
	ctx := context.Background()
	const ns = "kubehpc-cm"
	if _, err := helm(t, "install", "kubehpc-cm", subchart(t, "policies"), "--namespace", ns, "--create-namespace",
		"--values", filepath.Join("testdata", "policies-configmaps-values.yaml")); err != nil {
		t.Fatalf("install the policies chart alone: %v", err)
	}
	nsName := fmt.Sprintf("cm-carol-%d", seq.Add(1))
	missingNS := fmt.Sprintf("cm-dave-%d", seq.Add(1))
	maps := map[string]map[string]string{
		"user-uid-map":    {nsName: "10001", "user-other": "10002"},
		"user-gid-map":    {nsName: "10001"},
		"user-gids-map":   {nsName: `["10001","20001"]`},
		"user-groups-map": {nsName: `["carol","pzs0001"]`},
		"user-home-map":   {nsName: "/users/carol"},
	}
	for name, data := range maps {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
		if _, err := env.Kube.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Named with the prefix, no label: the rules apply by name.
	for _, n := range []string{nsName, missingNS} {
		if _, err := env.Kube.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = env.Kube.Client.CoreV1().Namespaces().Delete(context.Background(), n, metav1.DeleteOptions{})
		})
	}
	carol := bindUser(t, &user{Name: "carol", Namespace: nsName, UID: "10001", GID: "10001", GIDs: []string{"10001", "20001"}, Groups: []string{"carol", "pzs0001"}})
	dave := bindUser(t, &user{Name: "dave", Namespace: missingNS, UID: "10009", GID: "10009", GIDs: []string{"10009"}, Groups: []string{"dave"}})

	// Wait until the new policies are enforced.
	probe := goodPod(carol)
	probe.Spec.HostNetwork = true
	if err := pollDenied(ctx, func() error {
		_, err := env.Kube.Client.CoreV1().Pods(nsName).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}, "kubehpc-cm-pod-security"); err != nil {
		t.Fatal(err)
	}
	if _, err := carol.Client.CoreV1().Pods(nsName).Create(ctx, goodPod(carol), metav1.CreateOptions{}); err != nil {
		t.Fatalf("create a well-formed pod as carol: %v", err)
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			p := goodPod(carol)
			if a.name == "hostPath another user's home" {
				p.Spec.Volumes[1].HostPath.Path = "/users/bob"
			} else {
				a.mutate(p)
			}
			_, err := carol.Client.CoreV1().Pods(nsName).Create(ctx, p, metav1.CreateOptions{})
			want := a.want
			if strings.Contains(want, "alice") {
				want = strings.ReplaceAll(want, "alice", nsName)
			}
			if a.name == "privileged" {
				want = "privileged"
			}
			if !isDenied(err, want) {
				t.Errorf("create pod (%s) as carol: err = %v, want a denial containing %q", a.name, err, want)
			}
		})
	}
	t.Run("user missing from the maps", func(t *testing.T) {
		p := goodPod(dave)
		p.Spec.SecurityContext.SupplementalGroups = nil
		p.Spec.Volumes, p.Spec.Containers[0].VolumeMounts = nil, nil
		_, err := dave.Client.CoreV1().Pods(missingNS).Create(ctx, p, metav1.CreateOptions{})
		// Each map's policy denies on its own; which one the API server
		// reports first is not specified.
		want := "user " + missingNS + " is missing from ConfigMap kubehpc-cm/user-"
		if !isDenied(err, want) || !strings.Contains(err.Error(), "-map: the user is not in LDAP, or ldap-configmap has not synced them yet") {
			t.Errorf("create pod as a user missing from the maps: err = %v, want %q", err, want)
		}
	})
}
