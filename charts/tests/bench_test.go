package tests

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BenchmarkVAPAdmission measures what the ValidatingAdmissionPolicies cost a
// pod create on the real API server: 300 server-side dry-run creates of the
// well-formed pod in a user namespace (all five policies evaluated) and in a
// namespace outside their scope, as the same user, sequentially. It reports
// the p50 and p99 latency of each and the p50 overhead.
func BenchmarkVAPAdmission(b *testing.B) {
	installUmbrella(b)
	ctx := context.Background()
	u := newUser(b, "bench", "10001", "10001", []string{"10001", "20001"}, []string{"bench", "pzs0001"})
	out := fmt.Sprintf("bench-out-%d", seq.Add(1))
	createUserNamespace(b, out, nil, nil)
	bindUser(b, &user{Name: "bench", Namespace: out})
	const n = 300
	measure := func(ns string) (p50, p99 time.Duration) {
		pod := goodPod(u)
		d := make([]time.Duration, 0, n)
		for i := 0; i < n; i++ {
			start := time.Now()
			if _, err := u.Client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
				b.Fatalf("dry-run create in %s: %v", ns, err)
			}
			d = append(d, time.Since(start))
		}
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[n/2], d[n*99/100]
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		measure(out) // warm both paths
		inP50, inP99 := measure(u.Namespace)
		outP50, outP99 := measure(out)
		b.ReportMetric(float64(inP50.Microseconds())/1000, "policies_p50_ms")
		b.ReportMetric(float64(inP99.Microseconds())/1000, "policies_p99_ms")
		b.ReportMetric(float64(outP50.Microseconds())/1000, "nopolicy_p50_ms")
		b.ReportMetric(float64(outP99.Microseconds())/1000, "nopolicy_p99_ms")
		b.ReportMetric(float64((inP50-outP50).Microseconds())/1000, "overhead_p50_ms")
	}
}
