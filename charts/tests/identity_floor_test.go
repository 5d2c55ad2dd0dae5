package tests

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// identityFloor is one identity the LDAP data (or a stolen ldap-configmap or
// namespace-bootstrap token) could give a user, and what the pod rules must
// answer for the user's otherwise well-formed pod: system UIDs and GIDs are
// refused (minUID, minGID), and a home directory outside homeRoots is not the
// user's home for hostPaths.allowUserHome.
type identityFloor struct {
	name, uid, gid string
	gids           []string
	// home is the user's home directory; hostPath is mounted as the home
	// volume of the pod.
	home, hostPath string
	// want is the denial's words ("" when the pod is admitted).
	want string
}

var identityFloors = []identityFloor{
	{name: "system uid", uid: "999", gid: "10031", gids: []string{"10031"}, want: "minUID 1000"},
	{name: "root gid", uid: "10032", gid: "0", gids: []string{"0"}, want: "minGID 1000"},
	{name: "wheel supplemental", uid: "10033", gid: "10033", gids: []string{"10033", "10"}, want: "below minGID 1000"},
	{name: "home /etc", uid: "10034", gid: "10034", gids: []string{"10034"}, home: "/etc", hostPath: "/etc", want: "hostPath volumes are only allowed under"},
	{name: "home is a root", uid: "10035", gid: "10035", gids: []string{"10035"}, home: "/home", hostPath: "/home/victim", want: "hostPath volumes are only allowed under"},
	{name: "home prefix not a segment", uid: "10036", gid: "10036", gids: []string{"10036"}, home: "/homes/x", hostPath: "/homes/x", want: "hostPath volumes are only allowed under"},
	{name: "home under /home", uid: "10037", gid: "10037", gids: []string{"10037"}, home: "/home/floor", hostPath: "/home/floor/project"},
	{name: "home under /users", uid: "10038", gid: "10038", gids: []string{"10038"}, home: "/users/floor", hostPath: "/users/floor"},
}

// runIdentityFloors creates each user with newUser (then sets their home
// with setHome when the case names one) and submits their well-formed pod.
func runIdentityFloors(t *testing.T, newUser func(t *testing.T, name, uid, gid string, gids []string) *user,
	setHome func(t *testing.T, u *user, home string), denied func(err error, want string) bool) {
	ctx := context.Background()
	for i, c := range identityFloors {
		t.Run(c.name, func(t *testing.T) {
			name := "floor" + string(rune('a'+i))
			u := newUser(t, name, c.uid, c.gid, c.gids)
			p := goodPod(u)
			// Only the home volume: scratch and apps are not the question.
			p.Spec.Volumes = []corev1.Volume{p.Spec.Volumes[1]}
			for j := range p.Spec.Containers {
				p.Spec.Containers[j].VolumeMounts = []corev1.VolumeMount{{Name: "home", MountPath: "/home"}}
			}
			if c.home != "" {
				setHome(t, u, c.home)
				p.Spec.Volumes[0].HostPath.Path = c.hostPath
			}
			err := pollUntil(ctx, func() error {
				_, err := u.Client.CoreV1().Pods(u.Namespace).Create(ctx, p, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}, func(err error) bool {
				if c.want == "" {
					return err == nil
				}
				return denied(err, c.want)
			})
			switch {
			case c.want == "" && err != nil:
				t.Errorf("uid %s gid %s gids %v home %q, hostPath %s: %v, want admitted", c.uid, c.gid, c.gids, c.home, c.hostPath, err)
			case c.want != "" && !denied(err, c.want):
				t.Errorf("uid %s gid %s gids %v home %q, hostPath %s: err = %v, want a denial containing %q", c.uid, c.gid, c.gids, c.home, c.hostPath, err, c.want)
			}
		})
	}
}

// pollUntil retries do until ok holds for its result or 30 seconds pass (a
// changed identity reaches the policies' informers shortly after), and
// returns the last result.
func pollUntil(ctx context.Context, do func() error, ok func(error) bool) error {
	var last error
	_ = testenv.Poll(ctx, testenv.PollInterval, 30*time.Second, func() (bool, error) {
		last = do()
		return ok(last), nil
	})
	return last
}

// TestVAPIdentityFloor: the ValidatingAdmissionPolicies (identity from the
// namespace annotations, the umbrella's install) refuse system UIDs and GIDs
// and homes outside homeRoots.
func TestVAPIdentityFloor(t *testing.T) {
	installUmbrella(t)
	ctx := context.Background()
	runIdentityFloors(t, func(t *testing.T, name, uid, gid string, gids []string) *user {
		return newUser(t, name, uid, gid, gids, []string{name, "pzs0001"})
	}, func(t *testing.T, u *user, home string) {
		// As namespace-bootstrap, which may write the identity annotations.
		patch := []byte(`{"metadata":{"annotations":{"kubehpc.io/home":"` + home + `"}}}`)
		if _, err := saClient(t, "namespace-bootstrap").CoreV1().Namespaces().Patch(ctx, u.Namespace, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatalf("set the home of %s to %s: %v", u.Namespace, home, err)
		}
	}, isDenied)
}
