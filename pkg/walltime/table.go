package walltime

import (
	"bufio"
	_ "embed"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// table is the shared table of walltime values, embedded so that the tests of
// every module read the one file without a path relative to their own.
//
//go:embed testdata/lifetimes.txt
var table string

// Case is one row of the shared table testdata/lifetimes.txt: a walltime
// annotation value, whether the reaper and the admission policies accept
// it, and the walltime when they do.
type Case struct {
	Value    string
	Accepted bool
	Duration time.Duration
}

// Table returns the shared table (the tests of this package, of
// job-pod-reaper and of the chart's policies all read it).
// Format: value<TAB>yes|no[<TAB>seconds]; lines starting with # are comments;
// a value starting with a double quote is a Go string literal ("\t1h"), for
// whitespace and control characters.
func Table() ([]Case, error) {
	return readTable("testdata/lifetimes.txt", strings.NewReader(table))
}

func readTable(path string, r io.Reader) ([]Case, error) {
	var cases []Case
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, "\t")
		if len(parts) < 2 {
			return nil, fmt.Errorf("walltime table %s: bad row %q", path, line)
		}
		c := Case{Value: parts[0], Accepted: parts[1] == "yes"}
		if strings.HasPrefix(c.Value, `"`) {
			v, err := strconv.Unquote(c.Value)
			if err != nil {
				return nil, fmt.Errorf("walltime table %s: bad quoted value in row %q: %w", path, line, err)
			}
			c.Value = v
		}
		if c.Accepted {
			if len(parts) < 3 {
				return nil, fmt.Errorf("walltime table %s: accepted row %q has no seconds", path, line)
			}
			// Seconds as a decimal, read exactly (a float64 loses the
			// nanoseconds of large values).
			d, err := time.ParseDuration(parts[2] + "s")
			if err != nil {
				return nil, fmt.Errorf("walltime table %s: bad row %q: %w", path, line, err)
			}
			c.Duration = d
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read walltime table %s: %w", path, err)
	}
	return cases, nil
}
