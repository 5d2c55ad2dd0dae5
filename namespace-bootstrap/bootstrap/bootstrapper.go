// Package bootstrap creates and keeps up to date each user's namespace and
// the objects a site's template puts in it: at login (hook mode, or the
// HTTPS service the portal calls with the user's own token) and periodically
// for every managed namespace (reconcile).
package bootstrap

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-ldap/ldap/v3"
	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

var (
	// ErrUnknownUser is wrapped by IdentitySource errors for a user the
	// directory does not have.
	ErrUnknownUser = errors.New("unknown user")
	// ErrForeignNamespace is returned when the user's namespace exists and
	// belongs to another user (kubehpc.io/user differs).
	ErrForeignNamespace = errors.New("namespace belongs to another user")
	// ErrTerminatingTimeout is returned when the user's Terminating
	// namespace is not gone within TerminatingTimeout.
	ErrTerminatingTimeout = errors.New("timed out waiting for the Terminating namespace to be deleted")
	// ErrInvalidTemplate is returned for a template object this tool refuses
	// to write (cluster-scoped, another namespace).
	ErrInvalidTemplate = errors.New("invalid template")
	// ErrIdentityCollision is wrapped by IdentitySource errors when two or
	// more directory entries map to the user's namespace (john.smith and
	// john-smith, or Alice and alice): every one of them is refused until an
	// administrator resolves it, so that none can take the other's namespace.
	ErrIdentityCollision = errors.New("directory name collision")
	// ErrNotAllowed is returned for a user in none of the allowed groups.
	ErrNotAllowed = errors.New("not in a group allowed to log in")
)

// Login is who asks for a bootstrap: the portal username and, in service
// mode, the groups the API server's TokenReview reported for the token.
type Login struct {
	User   string
	Groups []string
}

// IdentitySource looks up a user's identity at login and returns the
// namespace identity annotations (pkg/identity). A user the directory does
// not have gives an error wrapping ErrUnknownUser.
type IdentitySource interface {
	Lookup(ctx context.Context, username string) (map[string]string, error)
}

// Result says what a bootstrap did.
type Result struct {
	User      string `json:"user"`
	Namespace string `json:"namespace"`
	// Created is true when the namespace did not exist (or was Terminating).
	Created bool `json:"created"`
	// Applied lists the objects written besides the login annotation.
	Applied []string `json:"applied,omitempty"`
	DryRun  bool     `json:"dryRun,omitempty"`
}

// Bootstrapper bootstraps users. Build it with Config.Build, or fill it in
// a test.
type Bootstrapper struct {
	Log      *zap.Logger
	Clock    clock.PassiveClock
	Dynamic  dynamic.Interface
	Mapper   *Mapper
	Template *Template
	// Base is the site part of the template data; the per-user fields are
	// filled in for each user.
	Base            Data
	NamespacePrefix string
	UsernamePrefix  string
	// Identity may be nil: no identity annotations then.
	Identity IdentitySource
	DryRun   bool
	// TerminatingTimeout bounds the wait for a Terminating namespace.
	TerminatingTimeout time.Duration
	// PollInterval is how often a Terminating namespace is checked.
	PollInterval time.Duration
	// AllowedGroups, when set, is the login gate: the user must be in one of
	// them, by the TokenReview's groups or by the LDAP groups.
	AllowedGroups []string
	// Recorder may be nil.
	Recorder record.EventRecorder
	// Self is the tool's own Pod (from $POD_NAMESPACE and $POD_NAME), the
	// object of the Warning Events meant for administrators; may be nil.
	Self    *corev1.ObjectReference
	metrics *metrics
}

// preservedAnnotations are written at login, not by the template: a
// reconcile keeps whatever values of them this tool owns.
func preservedAnnotations() []string {
	return append([]string{identity.LastHookExecutionAnnotation}, identity.IdentityAnnotations()...)
}

// Bootstrap creates or refreshes username's namespace and everything the
// template puts in it. An up-to-date user costs one write: the login
// annotation on the namespace.
func (b *Bootstrapper) Bootstrap(ctx context.Context, username string) (Result, error) {
	return b.BootstrapLogin(ctx, Login{User: username})
}

// BootstrapLogin is Bootstrap for a login that may carry the token's groups.
func (b *Bootstrapper) BootstrapLogin(ctx context.Context, login Login) (res Result, err error) {
	username := login.User
	start := b.Clock.Now()
	res = Result{User: username, DryRun: b.DryRun}
	defer func() {
		if b.metrics == nil {
			return
		}
		b.metrics.duration.Observe(b.Clock.Since(start).Seconds())
		b.metrics.bootstraps.WithLabelValues(resultLabel(res, err)).Inc()
	}()
	ns, err := naming.NamespaceForUser(b.NamespacePrefix, username)
	if err != nil {
		return res, err
	}
	res.Namespace = ns
	log := b.Log.With(zap.String("user", username), zap.String("namespace", ns), zap.Bool("dryRun", b.DryRun))
	var ident map[string]string
	if b.Identity != nil {
		if ident, err = b.Identity.Lookup(ctx, username); err != nil {
			if errors.Is(err, ErrIdentityCollision) {
				b.collision(log, username, ns, err)
			}
			return res, fmt.Errorf("look up identity of %q: %w", username, err)
		}
		// The owner is the login's exact spelling, never LDAP's.
		delete(ident, identity.UserAnnotation)
	}
	if err := b.checkAllowed(login, ident); err != nil {
		return res, err
	}
	nsObj, objs, err := b.render(username, ns, ident)
	if err != nil {
		return res, err
	}
	live, err := b.getNamespace(ctx, ns)
	if err != nil {
		return res, err
	}
	if live != nil && live.GetDeletionTimestamp() != nil {
		if live, err = b.waitGone(ctx, log, ns); err != nil {
			return res, err
		}
	}
	if err := b.checkOwner(ctx, log, live, username); err != nil {
		return res, err
	}
	res.Created = live == nil
	// The namespace is written at every login: its annotation is the
	// reapers' "last used" signal.
	_, nsReason := NeedsApply(nsObj, live, preservedAnnotations()...)
	if live != nil && nsReason == "" {
		nsReason = "login"
	}
	carryOver(nsObj, live)
	if ident != nil {
		setAnnotations(nsObj, ident)
	}
	// The template rendered for the username as given; the owner keeps that
	// spelling (not LDAP's, not an earlier login's), so that a reconcile
	// renders the same objects.
	setAnnotations(nsObj, map[string]string{
		identity.UserAnnotation:              username,
		identity.LastHookExecutionAnnotation: strconv.FormatInt(b.Clock.Now().Unix(), 10),
	})
	if err := b.apply(ctx, log, nsObj, nsReason); err != nil {
		return res, err
	}
	if nsReason != "login" {
		res.Applied = append(res.Applied, Describe(nsObj))
	}
	for _, o := range objs {
		var liveObj *unstructured.Unstructured
		if !res.Created {
			if liveObj, err = b.get(ctx, o); err != nil {
				return res, err
			}
		}
		need, reason := NeedsApply(o, liveObj)
		if !need {
			continue
		}
		if b.DryRun && res.Created {
			// The namespace was only dry-run created: the server would
			// refuse even a dry run of an object inside it.
			log.Info("Would apply object (dry run)", zap.String("kind", o.GetKind()), zap.String("name", o.GetName()), zap.String("reason", reason))
		} else if err := b.apply(ctx, log, o, reason); err != nil {
			return res, err
		}
		res.Applied = append(res.Applied, Describe(o))
	}
	if len(res.Applied) > 0 && b.Recorder != nil && !b.DryRun {
		// In the user's namespace, where the user can read it.
		ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Namespace", Name: ns, Namespace: ns}
		verb := "Updated"
		if res.Created {
			verb = "Created"
		}
		b.Recorder.Eventf(ref, corev1.EventTypeNormal, "Bootstrapped", "%s %s for user %s", verb, strings.Join(res.Applied, ", "), username)
	}
	log.Info("Bootstrapped user", zap.Bool("created", res.Created), zap.Strings("applied", res.Applied))
	return res, nil
}

func resultLabel(res Result, err error) string {
	switch {
	case err == nil && res.Created:
		return "created"
	case err == nil && len(res.Applied) > 0:
		return "updated"
	case err == nil:
		return "unchanged"
	case IsRefusal(err):
		return "refused"
	case IsTemporary(err):
		return "unavailable"
	default:
		return "failed"
	}
}

// IsRefusal reports whether err is about who asked (an invalid or unknown
// username, another user's namespace) rather than a failure to act.
func IsRefusal(err error) bool {
	return errors.Is(err, naming.ErrInvalidUsername) || errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrForeignNamespace) ||
		errors.Is(err, ErrIdentityCollision) || errors.Is(err, ErrNotAllowed)
}

// checkOwner refuses a namespace that another user's bootstrap made, and
// one that neither this tool nor Open OnDemand's own hook made (with an
// empty prefix, user "kube-system" must not take over kube-system). The
// owner annotation is compared exactly: RBAC compares usernames exactly, so
// "Alice" is not "alice". A namespace without an owner (made by Open
// OnDemand's hook, or by an older version) is adopted only when its
// RoleBindings already name exactly this user and nobody else.
func (b *Bootstrapper) checkOwner(ctx context.Context, log *zap.Logger, live *unstructured.Unstructured, username string) error {
	if live == nil {
		return nil
	}
	labels := live.GetLabels()
	if labels[identity.ManagedByLabel] != Tool.Name && labels[identity.OnDemandNameLabel] != identity.OnDemandNameValue {
		return fmt.Errorf("%w: namespace %s exists and was not made by %s or Open OnDemand's hook (no %s=%s or %s=%s label); refusing to take it over",
			ErrForeignNamespace, live.GetName(), Tool.Name, identity.ManagedByLabel, Tool.Name, identity.OnDemandNameLabel, identity.OnDemandNameValue)
	}
	owner, ok := live.GetAnnotations()[identity.UserAnnotation]
	if ok && owner != "" {
		if owner != username {
			return fmt.Errorf("%w: namespace %s belongs to %q (annotation %s), not %q (usernames are compared exactly)",
				ErrForeignNamespace, live.GetName(), owner, identity.UserAnnotation, username)
		}
		return nil
	}
	subject := b.UsernamePrefix + username
	named, err := b.boundUsers(ctx, live.GetName())
	if err != nil {
		return err
	}
	if len(named) == 1 && named[0] == subject {
		log.Info("Adopted namespace without an owner: its RoleBindings name only this user", zap.String("subject", subject))
		return nil
	}
	return fmt.Errorf("%w: namespace %s has no owner (%s) and its RoleBindings name %q, not only %q; refusing to adopt it. "+
		"A cluster admin either deletes it (the next login creates it afresh) or, if it is this user's, binds the user in it "+
		"(kubectl -n %s create rolebinding %s-adopt --clusterrole=%s --user=%s) and removes every other user's binding, then the user logs in again",
		ErrForeignNamespace, live.GetName(), identity.UserAnnotation, named, subject, live.GetName(), strings.TrimPrefix(live.GetName(), b.NamespacePrefix), b.Base.Roles.User, subject)
}

// boundUsers returns the users and groups (as "group:<name>") the
// RoleBindings of ns name, sorted and without repeats; service accounts
// are left out.
func (b *Bootstrapper) boundUsers(ctx context.Context, ns string) ([]string, error) {
	res := schema.GroupVersionResource{Group: "rbac.authorization.k8s.io", Version: "v1", Resource: "rolebindings"}
	list, err := b.Dynamic.Resource(res).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list RoleBindings in namespace %s: %w", ns, err)
	}
	seen := map[string]bool{}
	for _, rb := range list.Items {
		subjects, _, _ := unstructured.NestedSlice(rb.Object, "subjects")
		for _, s := range subjects {
			m, _ := s.(map[string]any)
			kind, _ := m["kind"].(string)
			name, _ := m["name"].(string)
			switch kind {
			case "User":
				seen[name] = true
			case "Group":
				seen["group:"+name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen)), nil
}

// checkAllowed is the login gate: with AllowedGroups set, the user must be
// in one of them by the token's groups or the LDAP groups.
func (b *Bootstrapper) checkAllowed(login Login, ident map[string]string) error {
	if len(b.AllowedGroups) == 0 {
		return nil
	}
	ldapGroups := strings.Split(strings.Trim(ident[identity.GroupsAnnotation], ","), ",")
	for _, g := range b.AllowedGroups {
		if g != "" && (slices.Contains(login.Groups, g) || slices.Contains(ldapGroups, g)) {
			return nil
		}
	}
	return fmt.Errorf("%w: user %q is in none of the groups allowed to log in (%s)", ErrNotAllowed, login.User, strings.Join(b.AllowedGroups, ", "))
}

// collision reports a directory name collision to administrators: a log
// line, a metric and a Warning Event on the tool's own Pod.
func (b *Bootstrapper) collision(log *zap.Logger, username, ns string, err error) {
	log.Warn("Refused login: several directory entries map to this namespace", zap.Error(err))
	if b.metrics != nil {
		b.metrics.collisions.Inc()
	}
	if b.Recorder != nil && b.Self != nil {
		b.Recorder.Eventf(b.Self, corev1.EventTypeWarning, "IdentityCollision",
			"Refused login of %q: several directory entries map to namespace %s; rename one of them in the directory (%v)", username, ns, err)
	}
}

// IsTemporary reports whether err is a failure that may go away by itself:
// the API server or LDAP unreachable, overloaded or timing out.
func IsTemporary(err error) bool {
	if err == nil || IsRefusal(err) {
		return false
	}
	if apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) {
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	return ldap.IsErrorWithCode(err, ldap.ErrorNetwork)
}

// data returns the template data for a user.
func (b *Bootstrapper) data(username, ns string, ident map[string]string) *Data {
	d := b.Base
	d.User = username
	d.Namespace = ns
	d.Name = strings.TrimPrefix(ns, b.NamespacePrefix)
	d.Subject = b.UsernamePrefix + username
	d.UID, d.GID, d.Home = ident[identity.UIDAnnotation], ident[identity.GIDAnnotation], ident[identity.HomeAnnotation]
	return &d
}

// render renders the template for a user and returns the Namespace (from
// the template, or a bare one) and the other objects, each labelled,
// hashed and placed in the user's namespace.
func (b *Bootstrapper) render(username, ns string, ident map[string]string) (*unstructured.Unstructured, []*unstructured.Unstructured, error) {
	objs, err := b.Template.Render(b.data(username, ns, ident))
	if err != nil {
		return nil, nil, err
	}
	var nsObj *unstructured.Unstructured
	var rest []*unstructured.Unstructured
	for _, o := range objs {
		m, err := b.Mapper.Map(o.GroupVersionKind())
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %s: %w", ErrInvalidTemplate, Describe(o), err)
		}
		switch {
		case m.Resource.GroupResource() == (schema.GroupResource{Resource: "namespaces"}):
			if o.GetName() != ns || nsObj != nil {
				return nil, nil, fmt.Errorf("%w: Namespace %q: the template may only hold the user's namespace (%s), once", ErrInvalidTemplate, o.GetName(), ns)
			}
			nsObj = o
			continue
		case !m.Namespaced:
			return nil, nil, fmt.Errorf("%w: %s is cluster-scoped; only the user's Namespace may be", ErrInvalidTemplate, Describe(o))
		case o.GetNamespace() != "" && o.GetNamespace() != ns:
			return nil, nil, fmt.Errorf("%w: %s is in namespace %q, not the user's", ErrInvalidTemplate, Describe(o), o.GetNamespace())
		}
		o.SetNamespace(ns)
		rest = append(rest, o)
	}
	if nsObj == nil {
		nsObj = &unstructured.Unstructured{}
		nsObj.SetAPIVersion("v1")
		nsObj.SetKind("Namespace")
		nsObj.SetName(ns)
	}
	for _, o := range append([]*unstructured.Unstructured{nsObj}, rest...) {
		labels := o.GetLabels()
		if labels == nil {
			labels = map[string]string{}
		}
		labels[identity.ManagedByLabel] = Tool.Name
		o.SetLabels(labels)
		setAnnotations(o, map[string]string{HashAnnotation: templateHash(o)})
	}
	// The owner, outside the hash: like the identity annotations it is
	// written at login and not compared.
	setAnnotations(nsObj, map[string]string{identity.UserAnnotation: username})
	return nsObj, rest, nil
}

func setAnnotations(o *unstructured.Unstructured, add map[string]string) {
	a := o.GetAnnotations()
	if a == nil {
		a = map[string]string{}
	}
	maps.Copy(a, add)
	o.SetAnnotations(a)
}

// carryOver copies into nsObj the login and identity annotations this tool
// owns on live, so that applying nsObj does not remove them (server-side
// apply drops owned fields an apply leaves out). Values other managers own
// (ldap-configmap) are left to them.
func carryOver(nsObj, live *unstructured.Unstructured) {
	if live == nil {
		return
	}
	owned := ownedAnnotations(live, Tool.Name)
	keep := map[string]string{}
	for _, k := range preservedAnnotations() {
		if v, ok := live.GetAnnotations()[k]; ok && owned[k] {
			keep[k] = v
		}
	}
	setAnnotations(nsObj, keep)
}

// ownedAnnotations returns the annotation keys manager owns by apply.
func ownedAnnotations(obj *unstructured.Unstructured, manager string) map[string]bool {
	owned := map[string]bool{}
	for _, mf := range obj.GetManagedFields() {
		if mf.Manager != manager || mf.Operation != metav1.ManagedFieldsOperationApply || mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]map[string]map[string]any
		if err := json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields); err != nil {
			continue
		}
		for k := range fields["f:metadata"]["f:annotations"] {
			if key, ok := strings.CutPrefix(k, "f:"); ok {
				owned[key] = true
			}
		}
	}
	return owned
}

func (b *Bootstrapper) resource(o *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	m, err := b.Mapper.Map(o.GroupVersionKind())
	if err != nil {
		return nil, err
	}
	if m.Namespaced {
		return b.Dynamic.Resource(m.Resource).Namespace(o.GetNamespace()), nil
	}
	return b.Dynamic.Resource(m.Resource), nil
}

// get returns the live object, or nil when it does not exist.
func (b *Bootstrapper) get(ctx context.Context, o *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := b.resource(o)
	if err != nil {
		return nil, err
	}
	live, err := ri.Get(ctx, o.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get %s%s: %w", Describe(o), inNamespace(o), err)
	}
	return live, nil
}

func (b *Bootstrapper) getNamespace(ctx context.Context, ns string) (*unstructured.Unstructured, error) {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("v1")
	o.SetKind("Namespace")
	o.SetName(ns)
	return b.get(ctx, o)
}

// inNamespace is " in namespace <ns>" for a namespaced object, else "".
func inNamespace(o *unstructured.Unstructured) string {
	if o.GetNamespace() == "" {
		return ""
	}
	return " in namespace " + o.GetNamespace()
}

// apply writes o by server-side apply, forcing ownership of the fields the
// template sets.
func (b *Bootstrapper) apply(ctx context.Context, log *zap.Logger, o *unstructured.Unstructured, reason string) error {
	ri, err := b.resource(o)
	if err != nil {
		return err
	}
	opts := metav1.ApplyOptions{FieldManager: Tool.Name, Force: true}
	if b.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Apply(ctx, o.GetName(), o, opts); err != nil {
		return fmt.Errorf("apply %s%s: %w", Describe(o), inNamespace(o), err)
	}
	if b.metrics != nil {
		b.metrics.applied.WithLabelValues(o.GetKind(), reason).Inc()
	}
	msg := "Applied object"
	if b.DryRun {
		msg = "Would apply object (dry run)"
	}
	lvl := log.Info
	if reason == "login" {
		lvl = log.Debug
	}
	lvl(msg, zap.String("kind", o.GetKind()), zap.String("name", o.GetName()), zap.String("reason", reason))
	return nil
}

// waitGone waits, at most TerminatingTimeout, for a Terminating namespace
// to be deleted, so that it can be created afresh.
func (b *Bootstrapper) waitGone(ctx context.Context, log *zap.Logger, ns string) (*unstructured.Unstructured, error) {
	if b.metrics != nil {
		b.metrics.terminatingWaits.Inc()
	}
	log.Info("Waiting for Terminating namespace to go before recreating it", zap.Duration("timeout", b.TerminatingTimeout))
	interval := b.PollInterval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	var live *unstructured.Unstructured
	err := wait.PollUntilContextTimeout(ctx, interval, b.TerminatingTimeout, true, func(ctx context.Context) (bool, error) {
		var err error
		live, err = b.getNamespace(ctx, ns)
		if err != nil {
			// Keep polling until the deadline: one failed read is not the end.
			log.Debug("Failed to read Terminating namespace", zap.Error(err))
			return false, nil
		}
		// Gone, or already recreated by a concurrent login.
		return live == nil || live.GetDeletionTimestamp() == nil, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: namespace %s still there after %v: %w", ErrTerminatingTimeout, ns, b.TerminatingTimeout, err)
	}
	return live, nil
}
