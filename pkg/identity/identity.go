// Package identity holds the names of the labels and annotations the tools
// share: the ones Open OnDemand sites already depend on, and our own under the
// kubehpc.io domain.
package identity

import (
	"sort"
	"strconv"
	"strings"
)

// Open OnDemand compatible names.
const (
	// LifetimeAnnotation is the walltime of a portal-launched pod (a Go duration).
	LifetimeAnnotation = "pod.kubernetes.io/lifetime"
	// LastHookExecutionAnnotation is written on the user namespace at every login (Unix seconds).
	LastHookExecutionAnnotation = "openondemand.org/last-hook-execution"
	// AccountLabel is the account a pod charges.
	AccountLabel = "account"
	// JobLabel ties a pod to the Services, ConfigMaps and Secrets of the same job.
	JobLabel = "job"
	// OnDemandNameLabel / OnDemandNameValue select portal-managed namespaces.
	OnDemandNameLabel = "app.kubernetes.io/name"
	OnDemandNameValue = "open-ondemand"
	// ManagedByLabel is the standard label naming the tool that manages an object.
	ManagedByLabel    = "app.kubernetes.io/managed-by"
	OnDemandManagedBy = "open-ondemand"
)

// Domain is the prefix of every label and annotation this project owns.
const Domain = "kubehpc.io"

// Identity annotations written on a user namespace (uid, gid, gids, groups,
// home by ldap-configmap and namespace-bootstrap; the owner, user, only by
// namespace-bootstrap, once, at creation), read by the admission policies. List values are
// comma-delimited with a leading and trailing comma (",1001,1002,") so that a
// CEL policy tests membership of N exactly with contains(",N,").
const (
	UIDAnnotation    = Domain + "/uid"
	GIDAnnotation    = Domain + "/gid"
	GIDsAnnotation   = Domain + "/gids"
	GroupsAnnotation = Domain + "/groups"
	HomeAnnotation   = Domain + "/home"
	// UserAnnotation names the user a namespace belongs to: the exact
	// authenticated username of the first login, never changed afterwards.
	UserAnnotation = Domain + "/user"
	// LastActivityAnnotation is the last pod activity seen by namespace-reaper (RFC 3339).
	LastActivityAnnotation = Domain + "/last-activity"
)

// IdentityAnnotations lists every identity annotation, for removal.
func IdentityAnnotations() []string {
	return []string{UIDAnnotation, GIDAnnotation, GIDsAnnotation, GroupsAnnotation, HomeAnnotation, UserAnnotation}
}

// DelimitedList renders values as ",a,b,c," (sorted as given), or "," for none.
func DelimitedList(values []string) string {
	return "," + strings.Join(values, ",") + ","
}

// SortNumeric sorts decimal strings by value.
func SortNumeric(values []string) {
	sort.SliceStable(values, func(i, j int) bool {
		a, errA := strconv.ParseInt(values[i], 10, 64)
		b, errB := strconv.ParseInt(values[j], 10, 64)
		if errA != nil || errB != nil {
			return values[i] < values[j]
		}
		return a < b
	})
}
