package testenv

import (
	"os"
	"runtime"
	"testing"
)

func TestReadMemory(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatalf("ReadMemory(self) = %v", err)
	}
	if m.Current <= 0 || m.Peak < m.Current {
		t.Errorf("ReadMemory(self) = %+v, want 0 < Current <= Peak", m)
	}
	peak, err := PeakRSS()
	if err != nil || peak < m.Peak {
		t.Errorf("PeakRSS() = %d, %v, want at least the earlier peak %d", peak, err, m.Peak)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Error("ReadMemory(-1) = nil error, want one")
	}
}

// TestResetPeakRSS: after 64 MiB touched and freed, ResetPeakRSS brings the
// peak back down to what the process holds now.
func TestResetPeakRSS(t *testing.T) {
	touch := func() {
		buf := make([]byte, 64<<20)
		for i := 0; i < len(buf); i += 4096 {
			buf[i] = 1
		}
		runtime.KeepAlive(buf)
	}
	touch()
	before, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if err := ResetPeakRSS(); err != nil {
		t.Fatalf("ResetPeakRSS() = %v", err)
	}
	after, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Peak > before.Peak-32<<20 {
		t.Errorf("peak after ResetPeakRSS = %d MiB, want at least 32 MiB under the peak before, %d MiB", after.Peak>>20, before.Peak>>20)
	}
}
