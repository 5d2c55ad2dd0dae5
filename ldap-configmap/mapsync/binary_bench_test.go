package mapsync

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/kubehpc/kubehpc/pkg/testenv"
)

// BenchmarkBinary50k runs the built ldap-configmap binary as the chart runs
// it (GOMEMLIMIT from the chart's goMemLimit, QPS 500, burst 1000, 32
// workers) for one cold pass (--once) over 50,000 users, 5,000 groups and
// 5,000 user namespaces, and reports the process's own peak RSS (the
// kernel's ru_maxrss of the child): the daemon's memory without the test
// harness, its clients and the LDIF that BenchmarkDirectory50k's figure
// includes. KUBEHPC_BENCH_GOMEMLIMIT overrides the limit ("off": none).
func BenchmarkBinary50k(b *testing.B) {
	limit := os.Getenv("KUBEHPC_BENCH_GOMEMLIMIT")
	if limit == "" {
		limit = "160MiB" // charts/kubehpc/charts/ldap-configmap/values.yaml goMemLimit
	}
	for range b.N {
		e := setupBench(b, 50000, 5000, 10, []string{MapperUID, MapperGIDs, MapperGroups}, 5000)
		bin := testenv.BuildBinary(b, "..")
		c := e.cfg
		args := []string{"--once", "--admin-address=", "--kubeconfig=" + env.Kube.KubeconfigPath,
			"--kube-api-qps=500", "--kube-api-burst=1000", "--workers=32",
			"--ldap-url=" + c.URL, "--ldap-bind-dn=" + c.BindDN, "--ldap-bind-password=" + c.BindPassword,
			"--ldap-user-base-dn=" + c.UserBaseDN, "--ldap-group-base-dn=" + c.GroupBaseDN, "--ldap-member-scheme=memberuid",
			"--mappers=user-uid,user-gids,user-groups", "--namespace=" + c.Namespace,
			"--namespace-annotations", "--user-prefix=" + c.UserPrefix}
		cmd := exec.CommandContext(context.Background(), bin, args...)
		cmd.Env = os.Environ()
		if limit != "off" {
			cmd.Env = append(cmd.Env, "GOMEMLIMIT="+limit)
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		// The gids and groups maps are over 1 MiB at this scale and refused:
		// the pass reports it and exits non-zero, after writing what fits.
		err := cmd.Run()
		if cmd.ProcessState == nil {
			b.Fatalf("run %s: %v\n%s", bin, err, out.String())
		}
		if !bytes.Contains(out.Bytes(), []byte("user-uid-map")) {
			b.Fatalf("ldap-configmap --once did not reach the maps (%v):\n%s", err, out.String())
		}
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			b.Fatal("no rusage for the child")
		}
		b.ReportMetric(float64(ru.Maxrss)/1000, "binary_peak_rss_MB") // ru_maxrss is in KiB
		b.ReportMetric(cmd.ProcessState.UserTime().Seconds()+cmd.ProcessState.SystemTime().Seconds(), "binary_cpu_s")
		b.Logf("ldap-configmap --once (GOMEMLIMIT %s): exit %v, peak RSS %.1f MB", limit, err, float64(ru.Maxrss)/1000)
	}
}
