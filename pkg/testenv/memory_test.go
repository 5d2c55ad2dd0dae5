package testenv

import (
	"os"
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
