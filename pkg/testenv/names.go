package testenv

import (
	"fmt"
	"os"
	"strings"
)

// UniqueName returns prefix followed by "<pid mod 10000>-<n>", n counting
// the names this Env has given: unique among the package's tests and (by
// the process id) among runs sharing a server's leftovers. It is lower case,
// so it serves as a namespace name, a label value or a name prefix.
func (e *Env) UniqueName(prefix string) string {
	return strings.ToLower(fmt.Sprintf("%s%d-%d", prefix, os.Getpid()%10000, e.seq.Add(1)))
}
