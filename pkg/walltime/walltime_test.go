package walltime

import (
	"strconv"
	"testing"
)

func loadCases(t *testing.T) []Case {
	t.Helper()
	cases, err := Table()
	if err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestParse(t *testing.T) {
	for _, c := range loadCases(t) {
		t.Run(strconv.Quote(c.Value), func(t *testing.T) {
			got, err := Parse(c.Value)
			if (err == nil) != c.Accepted {
				t.Fatalf("Parse(%q) error = %v, want accepted=%v", c.Value, err, c.Accepted)
			}
			if got != c.Duration {
				t.Errorf("Parse(%q) = %v, want %v", c.Value, got, c.Duration)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	f.Add("01h00m00s")
	f.Add("1.5h")
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err == nil && d <= 0 {
			t.Fatalf("Parse(%q) = %v, accepted a non-positive walltime", s, d)
		}
	})
}
