// Package kubeclient builds the Kubernetes client every tool uses: in-cluster
// configuration or a kubeconfig, with rate limits and a per-tool user agent.
package kubeclient

import (
	"fmt"

	"github.com/spf13/pflag"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options configure the client.
type Options struct {
	Kubeconfig string
	Context    string
	QPS        float32
	Burst      int
}

// AddFlags registers --kubeconfig, --context, --kube-api-qps and --kube-api-burst.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	if o.QPS == 0 {
		o.QPS = 20
	}
	if o.Burst == 0 {
		o.Burst = 40
	}
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Path to a kubeconfig; empty means in-cluster config, then $KUBECONFIG and ~/.kube/config")
	fs.StringVar(&o.Context, "context", o.Context, "The kubeconfig context to use")
	fs.Float32Var(&o.QPS, "kube-api-qps", o.QPS, "Queries per second to the Kubernetes API server")
	fs.IntVar(&o.Burst, "kube-api-burst", o.Burst, "Burst of queries to the Kubernetes API server")
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.QPS <= 0 {
		return fmt.Errorf("--kube-api-qps must be positive, got %v", o.QPS)
	}
	if o.Burst < 1 {
		return fmt.Errorf("--kube-api-burst must be at least 1, got %d", o.Burst)
	}
	return nil
}

// Config returns the REST config: the kubeconfig if one is named, else the
// in-cluster config, else the default kubeconfig loading rules.
func (o *Options) Config(userAgent string) (*rest.Config, error) {
	var cfg *rest.Config
	if o.Kubeconfig == "" && o.Context == "" {
		// In a pod; outside one this fails and the kubeconfig rules apply.
		cfg, _ = rest.InClusterConfig()
	}
	if cfg == nil {
		var err error
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = o.Kubeconfig
		overrides := &clientcmd.ConfigOverrides{CurrentContext: o.Context}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("load Kubernetes client config (kubeconfig %q): %w", o.Kubeconfig, err)
		}
	}
	cfg = rest.CopyConfig(cfg)
	cfg.QPS = o.QPS
	cfg.Burst = o.Burst
	cfg.UserAgent = userAgent
	return cfg, nil
}

// New returns the REST config and a clientset.
func (o *Options) New(userAgent string) (*rest.Config, kubernetes.Interface, error) {
	cfg, err := o.Config(userAgent)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("create Kubernetes client: %w", err)
	}
	return cfg, cs, nil
}

// UserAgent returns "<tool>/<version>".
func UserAgent(tool, version string) string {
	return tool + "/" + version
}
