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
	"maps"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/clock"

	"github.com/kubehpc/kubehpc/pkg/identity"
	"github.com/kubehpc/kubehpc/pkg/naming"
)

// FieldManager is the server-side apply field manager, and the value of the
// managed-by label on every object this tool writes.
const FieldManager = "namespace-bootstrap"

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
)

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
	// Recorder may be nil.
	Recorder record.EventRecorder
	metrics  *metrics
}

// preservedAnnotations are written at login, not by the template: a
// reconcile keeps whatever values of them this tool owns.
func preservedAnnotations() []string {
	return append([]string{identity.LastHookExecutionAnnotation}, identity.IdentityAnnotations()...)
}

// Bootstrap creates or refreshes username's namespace and everything the
// template puts in it. An up-to-date user costs one write: the login
// annotation on the namespace.
func (b *Bootstrapper) Bootstrap(ctx context.Context, username string) (res Result, err error) {
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
			return res, fmt.Errorf("look up identity of %q: %w", username, err)
		}
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
	if err := checkOwner(live, username); err != nil {
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
	default:
		return "failed"
	}
}

// IsRefusal reports whether err is about who asked (an invalid or unknown
// username, another user's namespace) rather than a failure to act.
func IsRefusal(err error) bool {
	return errors.Is(err, naming.ErrInvalidUsername) || errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrForeignNamespace)
}

// checkOwner refuses a namespace that another user's bootstrap made, and
// one that neither this tool nor Open OnDemand's own hook made (with an
// empty prefix, user "kube-system" must not take over kube-system).
func checkOwner(live *unstructured.Unstructured, username string) error {
	if live == nil {
		return nil
	}
	labels := live.GetLabels()
	if labels[identity.ManagedByLabel] != FieldManager && labels[identity.OnDemandNameLabel] != identity.OnDemandNameValue {
		return fmt.Errorf("%w: namespace %s exists and was not made by %s or Open OnDemand's hook (no %s=%s or %s=%s label); refusing to take it over",
			ErrForeignNamespace, live.GetName(), FieldManager, identity.ManagedByLabel, FieldManager, identity.OnDemandNameLabel, identity.OnDemandNameValue)
	}
	owner := live.GetAnnotations()[identity.UserAnnotation]
	if owner != "" && !strings.EqualFold(owner, username) {
		return fmt.Errorf("%w: namespace %s is annotated %s=%q, not %q", ErrForeignNamespace, live.GetName(), identity.UserAnnotation, owner, username)
	}
	return nil
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
		labels[identity.ManagedByLabel] = FieldManager
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
	owned := ownedAnnotations(live, FieldManager)
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
		return nil, fmt.Errorf("get %s in %s: %w", Describe(o), o.GetNamespace(), err)
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

// apply writes o by server-side apply, forcing ownership of the fields the
// template sets.
func (b *Bootstrapper) apply(ctx context.Context, log *zap.Logger, o *unstructured.Unstructured, reason string) error {
	ri, err := b.resource(o)
	if err != nil {
		return err
	}
	opts := metav1.ApplyOptions{FieldManager: FieldManager, Force: true}
	if b.DryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Apply(ctx, o.GetName(), o, opts); err != nil {
		return fmt.Errorf("apply %s in namespace %q: %w", Describe(o), o.GetNamespace(), err)
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
