package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// KyvernoOptions configure StartKyverno.
type KyvernoOptions struct {
	// Namespace holds Kyverno's Secrets, ConfigMap and Leases; empty means
	// "kyverno". It is excluded from Kyverno's webhooks, as kube-system is.
	Namespace string
}

// Kyverno is a running Kyverno admission controller: a local process whose
// webhooks, registered on the test API server, call it on loopback.
type Kyverno struct {
	Namespace string
	// URL is the webhook server's address (https, a certificate from a
	// throwaway CA that the webhook configurations carry).
	URL         string
	StartupTime time.Duration

	kube *Kube
	dyn  dynamic.Interface
	proc *process
}

// The CustomResourceDefinition, ClusterPolicy and webhook label Kyverno uses.
var (
	crdResource           = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	clusterPolicyResource = schema.GroupVersionResource{Group: "kyverno.io", Version: "v1", Resource: "clusterpolicies"}
)

const (
	kyvernoWebhookLabel = "webhook.kyverno.io/managed-by=kyverno"
	kyvernoCASecret     = "kyverno-svc.kyverno.svc.kyverno-tls-ca"
	kyvernoTLSSecret    = "kyverno-svc.kyverno.svc.kyverno-tls-pair"
	kyvernoProbeName    = "kubehpc-testenv-kyverno-probe"
	kyvernoProbeMessage = "denied by the kubehpc testenv probe policy"
)

// KyvernoAdmissionController returns the path of Kyverno's admission
// controller: $KUBEHPC_KYVERNO_ADMISSION_CONTROLLER if set, else the one
// hack/kyverno.sh builds and caches (with the CLI: ~7 minutes cold on 2 idle
// cores, serialised by a file lock). Kyverno's CustomResourceDefinitions are
// in the crds directory beside it.
func KyvernoAdmissionController() (string, error) {
	if p := os.Getenv("KUBEHPC_KYVERNO_ADMISSION_CONTROLLER"); p != "" {
		return p, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	return runScript(filepath.Join(root, "hack", "kyverno.sh"), "admission-controller")
}

// StartKyverno runs Kyverno's admission controller against k as a local
// process (out of cluster: --serverIP puts its loopback address in the webhook
// configurations), after installing Kyverno's CustomResourceDefinitions, a
// CA and serving certificate as the Secrets it reads, and its ConfigMap. It
// returns once a probe ClusterPolicy is enforced through the API server, so
// the webhooks are registered and answering. Kyverno's webhook configurations
// have fixed names: run one Kyverno per control plane at a time.
//
// Kyverno runs with the admin's kubeconfig, leader election (one candidate),
// no admission reports, no metrics servers and no certificate renewal.
func StartKyverno(ctx context.Context, k *Kube, o KyvernoOptions) (*Kyverno, error) {
	start := time.Now()
	if o.Namespace == "" {
		o.Namespace = "kyverno"
	}
	bin, err := KyvernoAdmissionController()
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(k.Config)
	if err != nil {
		return nil, fmt.Errorf("create dynamic client: %w", err)
	}
	ky := &Kyverno{Namespace: o.Namespace, kube: k, dyn: dyn}
	if err := ky.installCRDs(ctx, filepath.Join(filepath.Dir(bin), "crds")); err != nil {
		return nil, err
	}
	if err := ky.prepareNamespace(ctx); err != nil {
		return nil, err
	}
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := hostPort(ports[0])
	ky.URL = "https://" + addr
	envBin, err := exec.LookPath("env")
	if err != nil {
		return nil, fmt.Errorf("find env: %w", err)
	}
	// env(1) sets Kyverno's environment and execs it (same process).
	args := []string{
		"KYVERNO_NAMESPACE=" + o.Namespace,
		"KYVERNO_POD_NAME=" + fmt.Sprintf("kubehpc-testenv-%d", os.Getpid()),
		"KYVERNO_DEPLOYMENT=kyverno-admission-controller",
		"KYVERNO_SERVICEACCOUNT_NAME=kyverno-admission-controller",
		"INIT_CONFIG=kyverno", "METRICS_CONFIG=kyverno-metrics",
		bin,
		"--kubeconfig=" + k.KubeconfigPath,
		"--serverIP=" + addr, "--webhookServerHost=127.0.0.1", fmt.Sprintf("--webhookServerPort=%d", ports[0]),
		"--caSecretName=" + kyvernoCASecret, "--tlsSecretName=" + kyvernoTLSSecret, "--disableCertManagerController",
		"--admissionReports=false", "--disableMetrics", "--controllerRuntimeMetricsAddress=0",
		"--omitEvents=PolicyViolation,PolicyApplied,PolicyError,PolicySkipped",
		"--maxAuditWorkers=2", "--autoMemLimitEnabled=false", "--disableLogColor",
	}
	logPath := filepath.Join(k.Dir, fmt.Sprintf("kyverno-%d.log", time.Now().UnixNano()))
	if ky.proc, err = startProcess("kyverno", logPath, envBin, args...); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ky.Stop()
		}
	}()
	if err := ky.waitEnforced(ctx); err != nil {
		return nil, err
	}
	ky.StartupTime = time.Since(start)
	ok = true
	return ky, nil
}

// StartKyverno starts Kyverno's admission controller on the env's control
// plane for the rest of the test: it is stopped, and its webhook
// configurations removed, when the test ends. The test fails if it does not
// start.
func (e *Env) StartKyverno(t testing.TB, o KyvernoOptions) *Kyverno {
	t.Helper()
	ky, err := StartKyverno(context.Background(), e.Kube, o)
	if err != nil {
		t.Fatalf("start Kyverno: %v", err)
	}
	t.Cleanup(ky.Stop)
	t.Logf("Kyverno admission controller ready in %v (%s)", ky.StartupTime.Round(time.Millisecond), ky.URL)
	return ky
}

// Stop stops Kyverno, then deletes its webhook configurations (Kyverno
// removes them only when its Deployment goes away, and with failurePolicy
// Fail they would block the API server's requests) and its Leases, so the
// control plane is as before apart from the CustomResourceDefinitions.
func (ky *Kyverno) Stop() {
	if ky == nil {
		return
	}
	ky.proc.stop(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := ky.kube.Client
	sel := metav1.ListOptions{LabelSelector: kyvernoWebhookLabel}
	_ = c.AdmissionregistrationV1().ValidatingWebhookConfigurations().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = c.AdmissionregistrationV1().MutatingWebhookConfigurations().DeleteCollection(ctx, metav1.DeleteOptions{}, sel)
	_ = ky.dyn.Resource(clusterPolicyResource).Delete(ctx, kyvernoProbeName, metav1.DeleteOptions{})
	_ = c.CoordinationV1().Leases(ky.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{})
}

// LogTail returns the end of Kyverno's log, for failure messages.
func (ky *Kyverno) LogTail() string { return ky.proc.logTail() }

// installCRDs applies every CustomResourceDefinition under dir (server-side:
// some are too large for a last-applied annotation) and waits until the API
// server serves them.
func (ky *Kyverno) installCRDs(ctx context.Context, dir string) error {
	var names []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(b), 4096)
		for {
			var obj unstructured.Unstructured
			if err := dec.Decode(&obj.Object); errors.Is(err, io.EOF) {
				return nil
			} else if err != nil {
				return fmt.Errorf("decode %s: %w", path, err)
			}
			if obj.GetKind() != "CustomResourceDefinition" {
				continue
			}
			if _, err := ky.dyn.Resource(crdResource).Apply(ctx, obj.GetName(), &obj, metav1.ApplyOptions{FieldManager: "kubehpc-testenv", Force: true}); err != nil {
				return fmt.Errorf("apply CustomResourceDefinition %s: %w", obj.GetName(), err)
			}
			names = append(names, obj.GetName())
		}
	})
	if err != nil {
		return fmt.Errorf("install Kyverno's CustomResourceDefinitions from %s: %w", dir, err)
	}
	if len(names) == 0 {
		return fmt.Errorf("install Kyverno's CustomResourceDefinitions: none under %s (hack/kyverno.sh copies them there)", dir)
	}
	return poll(ctx, 2*time.Minute, func() error {
		for _, name := range names {
			crd, err := ky.dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			conds, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
			established := false
			for _, c := range conds {
				m, _ := c.(map[string]any)
				established = established || (m["type"] == "Established" && m["status"] == "True")
			}
			if !established {
				return fmt.Errorf("CustomResourceDefinition %s is not established", name)
			}
		}
		return nil
	})
}

// prepareNamespace creates Kyverno's namespace, the CA and serving
// certificate Secrets it reads (instead of its certificate controller
// generating them), and its ConfigMap: webhooks skip kube-system and
// Kyverno's namespace, as the Kyverno chart's defaults do. A Lease left by an
// earlier run is removed so that leader election does not wait for it.
func (ky *Kyverno) prepareNamespace(ctx context.Context) error {
	c := ky.kube.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ky.Namespace}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", ky.Namespace, err)
	}
	if err := c.CoordinationV1().Leases(ky.Namespace).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}); err != nil {
		return fmt.Errorf("delete Kyverno's old Leases: %w", err)
	}
	ca, err := NewCA("kubehpc testenv Kyverno CA")
	if err != nil {
		return err
	}
	service := "kyverno-svc." + ky.Namespace + ".svc"
	certPEM, keyPEM, err := ca.Issue(service, "kyverno-svc", service)
	if err != nil {
		return err
	}
	objs := []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: kyvernoCASecret}, Data: map[string][]byte{corev1.TLSCertKey: ca.CertPEM}},
		{ObjectMeta: metav1.ObjectMeta{Name: kyvernoTLSSecret}, Type: corev1.SecretTypeTLS, Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM}},
	}
	for _, s := range objs {
		secrets := c.CoreV1().Secrets(ky.Namespace)
		if err := secrets.Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete old Secret %s/%s: %w", ky.Namespace, s.Name, err)
		}
		if _, err := secrets.Create(ctx, s, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create Secret %s/%s: %w", ky.Namespace, s.Name, err)
		}
	}
	excluded := fmt.Sprintf(`["kube-system",%q]`, ky.Namespace)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kyverno"}, Data: map[string]string{
		"webhooks":        `{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name","operator":"NotIn","values":` + excluded + `}]}}`,
		"resourceFilters": fmt.Sprintf("[Event,*,*][*/*,kube-system,*][*/*,%s,*]", ky.Namespace),
	}}
	configMaps := c.CoreV1().ConfigMaps(ky.Namespace)
	if err := configMaps.Delete(ctx, cm.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete old ConfigMap %s/%s: %w", ky.Namespace, cm.Name, err)
	}
	if _, err := configMaps.Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create ConfigMap %s/%s: %w", ky.Namespace, cm.Name, err)
	}
	return nil
}

// waitEnforced creates a ClusterPolicy that denies one ConfigMap name in the
// default namespace and polls a server-side dry-run create of that ConfigMap
// until the API server returns the policy's denial: Kyverno has then synced
// its informers, registered its webhooks and answers them. The probe policy
// is deleted afterwards, so Kyverno's webhooks do not see every ConfigMap.
func (ky *Kyverno) waitEnforced(ctx context.Context) error {
	policy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "kyverno.io/v1",
		"kind":       "ClusterPolicy",
		"metadata":   map[string]any{"name": kyvernoProbeName},
		"spec": map[string]any{
			"background": false,
			"rules": []any{map[string]any{
				"name": "probe",
				"match": map[string]any{"any": []any{map[string]any{"resources": map[string]any{
					"kinds": []any{"ConfigMap"}, "namespaces": []any{"default"}, "names": []any{kyvernoProbeName}}}}},
				"validate": map[string]any{
					"failureAction": "Enforce",
					"message":       kyvernoProbeMessage,
					"deny":          map[string]any{},
				},
			}},
		},
	}}
	pol := ky.dyn.Resource(clusterPolicyResource)
	// Kyverno's own policy webhook validates ClusterPolicies once it is up;
	// until then the API server alone accepts it.
	if err := ky.proc.waitFor(ctx, 3*time.Minute, func() error {
		_, err := pol.Apply(ctx, kyvernoProbeName, policy, metav1.ApplyOptions{FieldManager: "kubehpc-testenv", Force: true})
		return err
	}); err != nil {
		return fmt.Errorf("create the Kyverno probe ClusterPolicy: %w", err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: kyvernoProbeName}}
	err := ky.proc.waitFor(ctx, 3*time.Minute, func() error {
		_, err := ky.kube.Client.CoreV1().ConfigMaps("default").Create(ctx, cm, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if err != nil && strings.Contains(err.Error(), kyvernoProbeMessage) {
			return nil
		}
		return fmt.Errorf("dry-run create of the probe ConfigMap: got %v, want Kyverno's denial", err)
	})
	if err != nil {
		return fmt.Errorf("wait until Kyverno enforces its probe ClusterPolicy: %w", err)
	}
	if err := pol.Delete(ctx, kyvernoProbeName, metav1.DeleteOptions{}); err != nil {
		return fmt.Errorf("delete the Kyverno probe ClusterPolicy: %w", err)
	}
	return nil
}

// poll calls check until it returns nil, or fails with its last error after
// timeout.
func poll(ctx context.Context, timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	delay := 20 * time.Millisecond
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not done after %v: %w", timeout, err)
		case <-time.After(delay):
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}
