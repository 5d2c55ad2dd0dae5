package reaper

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehpc/kubehpc/pkg/app"
	"github.com/kubehpc/kubehpc/pkg/app/apptest"
	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// planCase is a testdata/plan/*.yaml file: the flags, the time of the pass
// and a snapshot of the pods and companion objects in scope.
type planCase struct {
	Now     time.Time    `json:"now"`
	Args    []string     `json:"args"`
	Pods    []corev1.Pod `json:"pods"`
	Objects []objectCase `json:"objects"`
}

// objectCase is a companion object of the snapshot: its kind (service,
// configmap) and its metadata.
type objectCase struct {
	Kind     string            `json:"kind"`
	Metadata metav1.ObjectMeta `json:"metadata"`
}

// TestPlanGolden plans each testdata/plan/*.yaml snapshot without a cluster
// (BuildPlan, as a pass calls it) and compares the plan with the .golden
// file beside it; -update rewrites them. The integration tests prove
// reading the snapshot and applying the plan.
func TestPlanGolden(t *testing.T) {
	testenv.Cases(t, filepath.Join("testdata", "plan"), func(t *testing.T, file string, in *planCase) {
		c := NewConfig()
		if _, err := app.Parse(tool, in.Args, apptest.NoEnv, io.Discard, c); err != nil {
			t.Fatalf("Parse(%q) = %v", in.Args, err)
		}
		// The pods and objects as the reaper's caches hold them.
		r := &Reaper{cfg: c, jobLabel: c.jobLabel()}
		pods := make([]*Pod, len(in.Pods))
		for i := range in.Pods {
			pods[i] = r.slim(&in.Pods[i])
		}
		objects := make([]Object, len(in.Objects))
		for i, o := range in.Objects {
			m := o.Metadata
			objects[i] = Object{Kind: o.Kind, Namespace: m.Namespace, Name: m.Name, UID: m.UID, Job: JobOf(m.Labels, r.jobLabel), Created: m.CreationTimestamp.Time}
		}
		got := renderPlan(BuildPlan(pods, objects, in.Now, in.Now, c.policy(), c.OrphanMinAge))
		golden := strings.TrimSuffix(file, ".yaml") + ".golden"
		if diff := cmp.Diff(testenv.Golden(t, golden, got, *update), got); diff != "" {
			t.Errorf("BuildPlan(%s) differs from %s (-want +got):\n%s", file, golden, diff)
		}
	})
}

// renderPlan writes a plan as the golden files hold it.
func renderPlan(p Plan) string {
	var b strings.Builder
	// The expired pod of each job that takes the job's objects.
	taker := map[NamespacedJob]*Pod{}
	for _, e := range p.Expired {
		if e.LastOfJob {
			taker[NamespacedJob{e.Pod.Namespace, e.Job}] = e.Pod
		}
	}
	fmt.Fprintf(&b, "expired, in deletion order:\n")
	for _, e := range p.Expired {
		fmt.Fprintf(&b, "  %s\n", describeExpiry(e))
		switch {
		case e.Job == "":
			fmt.Fprintf(&b, "    no job: the pod only\n")
		case e.LastOfJob:
			fmt.Fprintf(&b, "    last of job %s: its Secrets go with it", e.Job)
			for _, o := range e.Companions {
				fmt.Fprintf(&b, ", %s %s", o.Kind, o.Name)
			}
			fmt.Fprintf(&b, "\n")
		case taker[NamespacedJob{e.Pod.Namespace, e.Job}] != nil:
			fmt.Fprintf(&b, "    job %s: its objects go with %s, the last of its pods\n", e.Job, taker[NamespacedJob{e.Pod.Namespace, e.Job}].Name)
		default:
			fmt.Fprintf(&b, "    job %s kept: another of its pods is within its walltime\n", e.Job)
		}
	}
	fmt.Fprintf(&b, "orphans, oldest first:\n")
	for _, o := range p.Orphans {
		fmt.Fprintf(&b, "  %s %s/%s: job %s has no pod, created %s\n", o.Kind, o.Namespace, o.Name, o.Job, o.Created.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "orphan jobs (their Secrets):\n")
	for _, j := range p.OrphanJobs {
		fmt.Fprintf(&b, "  %s/%s\n", j.Namespace, j.Job)
	}
	fmt.Fprintf(&b, "warned:\n")
	for _, e := range p.Warn {
		fmt.Fprintf(&b, "  %s\n", describeExpiry(e))
	}
	fmt.Fprintf(&b, "waiting:\n")
	for _, e := range p.Waiting {
		fmt.Fprintf(&b, "  %s, next %s\n", describeExpiry(e), e.Verdict.Next.UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, "invalid lifetimes:\n")
	for _, inv := range p.Invalid {
		fmt.Fprintf(&b, "  %s/%s: %v\n", inv.Pod.Namespace, inv.Pod.Name, inv.Err)
	}
	fmt.Fprintf(&b, "skipped:\n")
	for _, r := range skipReasons() {
		if n := p.Skipped[r]; n > 0 {
			fmt.Fprintf(&b, "  %s: %d\n", r, n)
		}
	}
	return b.String()
}

// describeExpiry is a pod with its deadline and where its walltime came from.
func describeExpiry(e Expiry) string {
	v := e.Verdict
	s := fmt.Sprintf("%s/%s: %s (%s) from %s, deadline %s", e.Pod.Namespace, e.Pod.Name, v.Lifetime, v.Source,
		v.Start.UTC().Format(time.RFC3339), v.Deadline.UTC().Format(time.RFC3339))
	if v.Shorten {
		s += ", terminating too slowly: grace shortened"
	}
	return s
}
