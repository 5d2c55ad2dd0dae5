package story

import (
	"fmt"
	"time"
)

// Summary prints what each step showed.
func (s *Story) Summary() {
	s.p.Section("Summary")
	r := s.Results
	ok := func(b bool) string {
		if b {
			return "yes"
		}
		return "NO"
	}
	denied := 0
	admitted := 0
	for _, a := range r.Admission {
		if a.Allowed {
			admitted++
		} else {
			denied++
		}
	}
	logins := 0
	for _, l := range r.Logins {
		if l.Err == nil {
			logins++
		}
	}
	s.p.Table([]string{"step", "result"}, [][]string{
		{"control plane / slapd start", fmt.Sprintf("%v / %v", r.StartKube.Round(time.Millisecond), r.StartLDAP.Round(time.Millisecond))},
		{"ldap-configmap", fmt.Sprintf("%d ConfigMaps, %d users", len(r.Maps), len(r.Maps["user-uid-map"]))},
		{"namespace-bootstrap", fmt.Sprintf("%d logins (hook and service mode), bad tokens refused", logins)},
		{"admission", fmt.Sprintf("%d pod admitted, %d rejected as they should be", admitted, denied)},
		{"job-pod-reaper", fmt.Sprintf("pod reaped %v after walltime: %s, companions gone: %d", r.Walltime.DeletedAfter.Round(10*time.Millisecond), ok(r.Walltime.Deleted), len(r.Walltime.CompanionsGone))},
		{"namespace-reaper", fmt.Sprintf("idle %s deleted: %s; active %s kept: %s", r.Reap.Idle, ok(r.Reap.IdleDeleted), r.Reap.Active, ok(r.Reap.ActiveKept))},
	})
}
