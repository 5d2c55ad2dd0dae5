// Package walltime parses the walltime annotation of a portal-launched pod
// (pod.kubernetes.io/lifetime). The grammar is the one the shipped admission
// policies accept, so every admitted pod has a walltime the reaper reads; the
// table in testdata/lifetimes.txt (embedded, read with Table) is shared by
// both tests.
package walltime

import (
	"fmt"
	"regexp"
	"time"
)

// Pattern is the accepted grammar: one to four <number><unit> with unit h,
// m, s or ms and an optional decimal fraction, e.g. "01h00m00s", "90m",
// "1h30m", "1.5h". The integer part has at most 5 digits for h, 7 for m, 9
// for s and 12 for ms, so no value the pattern admits overflows Go's
// time.Duration (at most about 1.1 million hours, against 2.56 million): a
// value like 3000000h is rejected by the pattern itself, with the same message
// as any other malformed value, by this parser and by both policy engines,
// which use this exact regular expression (and Go's duration parser after it).
const Pattern = `^(([0-9]{1,5}(\.[0-9]+)?h)|([0-9]{1,7}(\.[0-9]+)?m)|([0-9]{1,9}(\.[0-9]+)?s)|([0-9]{1,12}(\.[0-9]+)?ms)){1,4}$`

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
