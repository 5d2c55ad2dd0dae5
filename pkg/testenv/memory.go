package testenv

import (
	"bufio"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// Memory is a process's resident set size, in bytes, from /proc/<pid>/status.
type Memory struct {
	// Peak is the high-water mark (VmHWM).
	Peak int64
	// Current is the resident set now (VmRSS).
	Current int64
}

// ReadMemory reads the resident set sizes of process pid (Linux).
func ReadMemory(pid int) (Memory, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(path)
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of process %d: %w", pid, err)
	}
	defer f.Close()
	var m Memory
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("read %s of %s: %w", k, path, err)
		}
		if k == "VmHWM" {
			m.Peak = kb << 10
		} else {
			m.Current = kb << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, fmt.Errorf("read %s: %w", path, err)
	}
	if found != 2 {
		return Memory{}, fmt.Errorf("read %s: no VmHWM and VmRSS", path)
	}
	return m, nil
}

// PeakRSS returns this process's peak resident set size in bytes (its
// VmHWM: everything the test process did, servers excluded).
func PeakRSS() (int64, error) {
	m, err := ReadMemory(os.Getpid())
	return m.Peak, err
}

// ResetPeakRSS returns the memory this process has freed to the system and
// resets its peak resident set (VmHWM) to the current one, so that a peak
// read later is that of what ran since (a benchmark's passes, not its
// set-up).
func ResetPeakRSS() error {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("reset the peak resident set: %w", err)
	}
	return nil
}

// ReportPeakRSS reports this process's peak resident set as the benchmark
// metric peak_rss_MB (MiB, the unit every benchmark of the project reports).
func ReportPeakRSS(b *testing.B) {
	b.Helper()
	ReportPeakRSSAs(b, "peak_rss_MB")
}

// ReportPeakRSSAs reports this process's peak resident set, in MiB, as the
// benchmark metric unit (e.g. setup_peak_rss_MB).
func ReportPeakRSSAs(b *testing.B, unit string) {
	b.Helper()
	peak, err := PeakRSS()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(peak)/(1<<20), unit)
}
