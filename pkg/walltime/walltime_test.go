package walltime

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Case is one row of testdata/lifetimes.txt.
type Case struct {
	Value    string
	Accepted bool
	Duration time.Duration
}

func loadCases(t *testing.T) []Case {
	t.Helper()
	f, err := os.Open("testdata/lifetimes.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []Case
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		c := Case{Value: parts[0], Accepted: parts[1] == "yes"}
		if c.Accepted {
			secs, err := strconv.ParseFloat(parts[2], 64)
			if err != nil {
				t.Fatalf("bad row %q: %v", line, err)
			}
			c.Duration = time.Duration(secs * float64(time.Second))
		}
		cases = append(cases, c)
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
