// Package walltime parses the walltime annotation of a portal-launched pod
// (pod.kubernetes.io/lifetime). The grammar is the one the shipped admission
// policies accept, so every admitted pod has a walltime the reaper reads; the
// table in testdata/lifetimes.txt is shared by both tests.
package walltime

import (
	"fmt"
	"regexp"
	"time"
)

// Pattern is the accepted grammar: one or more <number><unit> with unit h, m,
// s or ms and an optional decimal fraction, e.g. "01h00m00s", "90m",
// "1h30m", "1.5h". The admission policies use this exact regular expression.
const Pattern = `^([0-9]+(\.[0-9]+)?(h|ms|m|s))+$`

// Parse returns the walltime, which must match Pattern and be positive.
func Parse(s string) (time.Duration, error) {
	if !re.MatchString(s) {
		return 0, fmt.Errorf("walltime %q: not a duration such as 01h00m00s, 90m or 1h30m", s)
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("walltime %q: %w", s, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("walltime %q: must be positive", s)
	}
	return d, nil
}

// re is compiled once; it is read-only.
var re = regexp.MustCompile(Pattern)
