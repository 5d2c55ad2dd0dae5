package toolmetrics

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFactory makes one metric of each kind and reads them back from the
// registry: named under the namespace, with their help, labels and buckets.
func TestFactory(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	f := New(reg, "my_tool")
	f.Counter("runs_total", "Passes run.").Add(2)
	f.CounterVec("writes_total", "Writes by kind and result.", "kind", "result").WithLabelValues("pod", "ok").Inc()
	f.Gauge("users", "Users.").Set(3)
	f.GaugeVec("kept", "Kept, by reason.", "reason").WithLabelValues("busy").Set(4)
	f.Histogram("lag_seconds", "Lag.", []float64{1, 10}).Observe(5)
	want := `
# HELP my_tool_kept Kept, by reason.
# TYPE my_tool_kept gauge
my_tool_kept{reason="busy"} 4
# HELP my_tool_lag_seconds Lag.
# TYPE my_tool_lag_seconds histogram
my_tool_lag_seconds_bucket{le="1"} 0
my_tool_lag_seconds_bucket{le="10"} 1
my_tool_lag_seconds_bucket{le="+Inf"} 1
my_tool_lag_seconds_sum 5
my_tool_lag_seconds_count 1
# HELP my_tool_runs_total Passes run.
# TYPE my_tool_runs_total counter
my_tool_runs_total 2
# HELP my_tool_users Users.
# TYPE my_tool_users gauge
my_tool_users 3
# HELP my_tool_writes_total Writes by kind and result.
# TYPE my_tool_writes_total counter
my_tool_writes_total{kind="pod",result="ok"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// TestFactoryRegistersOnce: a second metric of the same name is a
// programming error, and panics as MustRegister does.
func TestFactoryRegistersOnce(t *testing.T) {
	f := New(prometheus.NewRegistry(), "my_tool")
	f.Counter("runs_total", "Passes run.")
	defer func() {
		if recover() == nil {
			t.Error("Counter(runs_total) twice did not panic")
		}
	}()
	f.Counter("runs_total", "Passes run.")
}
