package testenv

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Token is a static bearer token the API server accepts (--token-auth-file).
type Token struct {
	Token, User, UID string
	Groups           []string
}

// KubeOptions configure StartKube.
type KubeOptions struct {
	// Dir holds data, certificates, logs and the kubeconfig; empty means a new
	// temporary directory, removed by Stop.
	Dir string
	// ControllerManager also starts kube-controller-manager: namespaces finish
	// deleting and default ServiceAccounts exist.
	ControllerManager bool
	// Tokens are extra static tokens (an admin token is always made).
	Tokens []Token
	// APIServerPort is the secure port; 0 picks a free one.
	APIServerPort int
	// Progress, if set, is told about slow steps (the first build).
	Progress func(msg string)
}

// Kube is a running control plane.
type Kube struct {
	Dir            string
	Host           string
	CAFile         string
	KubeconfigPath string
	AdminToken     string
	// Config is the admin's REST config (system:masters).
	Config *rest.Config
	Client kubernetes.Interface
	// Assets is the directory with the binaries (kubectl among them).
	Assets      string
	StartupTime time.Duration

	ownDir               bool
	etcd, apiserver, kcm *process
	// apiArgs are kube-apiserver's flags, to start it again (restart.go).
	apiArgs []string
}

// StartKube starts etcd and kube-apiserver (and optionally
// kube-controller-manager) on loopback and waits until the API server is ready.
func StartKube(ctx context.Context, o KubeOptions) (*Kube, error) {
	if o.Progress != nil {
		o.Progress("Preparing the Kubernetes control plane binaries (the first build takes ~12 minutes)")
	}
	assets, err := KubeAssets()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	k := &Kube{Dir: o.Dir, Assets: assets}
	if k.Dir == "" {
		if k.Dir, err = os.MkdirTemp("", "kubehpc-kube-"); err != nil {
			return nil, fmt.Errorf("create control plane dir: %w", err)
		}
		k.ownDir = true
	}
	ok := false
	defer func() {
		if !ok {
			k.Stop()
		}
	}()
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	etcdPort, peerPort, apiPort, kcmPort := ports[0], ports[1], ports[2], ports[3]
	if o.APIServerPort != 0 {
		apiPort = o.APIServerPort
	}
	k.Host = "https://" + hostPort(apiPort)

	// etcd
	k.etcd, err = startProcess("etcd", filepath.Join(k.Dir, "etcd.log"), filepath.Join(assets, "etcd"),
		"--name", "kubehpc", "--data-dir", filepath.Join(k.Dir, "etcd"),
		"--listen-client-urls", "http://"+hostPort(etcdPort), "--advertise-client-urls", "http://"+hostPort(etcdPort),
		"--listen-peer-urls", "http://"+hostPort(peerPort), "--initial-advertise-peer-urls", "http://"+hostPort(peerPort),
		"--initial-cluster", "kubehpc=http://"+hostPort(peerPort), "--unsafe-no-fsync", "--log-level", "error")
	if err != nil {
		return nil, err
	}

	// Credentials: service-account signing key and static tokens.
	saKey, saPub, err := writeServiceAccountKey(k.Dir)
	if err != nil {
		return nil, err
	}
	k.AdminToken = randomToken()
	tokens := append([]Token{{Token: k.AdminToken, User: "admin", UID: "admin", Groups: []string{"system:masters"}}}, o.Tokens...)
	tokenFile := filepath.Join(k.Dir, "tokens.csv")
	if err := writeTokenFile(tokenFile, tokens); err != nil {
		return nil, err
	}
	certDir := filepath.Join(k.Dir, "certs")
	k.CAFile = filepath.Join(certDir, "apiserver.crt")
	args := []string{
		"--etcd-servers=http://" + hostPort(etcdPort),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort),
		"--cert-dir=" + certDir, "--token-auth-file=" + tokenFile, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file=" + saPub,
		"--service-account-signing-key-file=" + saKey, "--service-cluster-ip-range=10.96.0.0/24",
		"--endpoint-reconciler-type=none", "--v=0",
		// As on a real cluster: privileged pods are a matter for admission policy.
		"--allow-privileged=true",
	}
	if !o.ControllerManager {
		// Without the controller-manager nobody creates default ServiceAccounts.
		args = append(args, "--disable-admission-plugins=ServiceAccount")
	}
	if err := k.etcd.waitFor(ctx, 30*time.Second, httpOK("http://"+hostPort(etcdPort)+"/health", "", "")); err != nil {
		return nil, err
	}
	k.apiArgs = args
	k.apiserver, err = startProcess("kube-apiserver", filepath.Join(k.Dir, "kube-apiserver.log"), filepath.Join(assets, "kube-apiserver"), args...)
	if err != nil {
		return nil, err
	}
	if err := k.apiserver.waitFor(ctx, 90*time.Second, httpOK(k.Host+"/readyz", k.CAFile, k.AdminToken)); err != nil {
		return nil, err
	}
	k.Config = &rest.Config{Host: k.Host, BearerToken: k.AdminToken, TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile}, QPS: 200, Burst: 400}
	if k.Client, err = kubernetes.NewForConfig(k.Config); err != nil {
		return nil, fmt.Errorf("create admin client: %w", err)
	}
	k.KubeconfigPath = filepath.Join(k.Dir, "kubeconfig")
	if err := k.writeKubeconfig(k.KubeconfigPath, "admin", k.AdminToken); err != nil {
		return nil, err
	}
	if o.ControllerManager {
		k.kcm, err = startProcess("kube-controller-manager", filepath.Join(k.Dir, "kube-controller-manager.log"),
			filepath.Join(assets, "kube-controller-manager"),
			"--kubeconfig="+k.KubeconfigPath, "--leader-elect=false", "--bind-address=127.0.0.1",
			fmt.Sprintf("--secure-port=%d", kcmPort), "--cert-dir="+filepath.Join(k.Dir, "kcm"),
			"--service-account-private-key-file="+saKey, "--root-ca-file="+k.CAFile,
			"--use-service-account-credentials=false", "--controllers=*,-nodeipam,-nodelifecycle", "--v=0")
		if err != nil {
			return nil, err
		}
		// Ready when the default namespace's ServiceAccount exists.
		if err := k.kcm.waitFor(ctx, 60*time.Second, func() error {
			_, err := k.Client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err
		}); err != nil {
			return nil, err
		}
	}
	k.StartupTime = time.Since(start)
	ok = true
	return k, nil
}

// Stop stops the controller-manager, then the API server, then etcd (the API
// server can hang on SIGTERM when etcd goes first), and removes the directory
// if StartKube made it.
func (k *Kube) Stop() {
	if k == nil {
		return
	}
	k.kcm.stop(5 * time.Second)
	k.apiserver.stop(10 * time.Second)
	k.etcd.stop(5 * time.Second)
	if k.ownDir {
		_ = os.RemoveAll(k.Dir)
	}
}

// ConfigAs returns a REST config that impersonates user with groups
// (system:authenticated is added).
func (k *Kube) ConfigAs(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(k.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: append(groups, "system:authenticated")}
	return cfg
}

// WriteKubeconfigAs writes a kubeconfig that uses the admin token but
// impersonates user and groups (system:authenticated is added), so a tool run
// on the command line has exactly that identity's permissions.
func (k *Kube) WriteKubeconfigAs(path, user string, groups ...string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubehpc"] = &clientcmdapi.Cluster{Server: k.Host, CertificateAuthority: k.CAFile}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: k.AdminToken, Impersonate: user, ImpersonateGroups: append(groups, "system:authenticated")}
	cfg.Contexts["kubehpc"] = &clientcmdapi.Context{Cluster: "kubehpc", AuthInfo: user}
	cfg.CurrentContext = "kubehpc"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

// ServiceAccountGroups are the groups a ServiceAccount's token carries.
func ServiceAccountGroups(namespace string) []string {
	return []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace}
}

// ServiceAccountConfig returns a REST config acting as a ServiceAccount.
func (k *Kube) ServiceAccountConfig(namespace, name string) *rest.Config {
	return k.ConfigAs("system:serviceaccount:"+namespace+":"+name, ServiceAccountGroups(namespace)...)
}

// TokenConfig returns a REST config that authenticates with a bearer token.
func (k *Kube) TokenConfig(token string) *rest.Config {
	return &rest.Config{Host: k.Host, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAFile: k.CAFile}, QPS: 100, Burst: 200}
}

// ClientFor returns a clientset for cfg.
func ClientFor(cfg *rest.Config) (kubernetes.Interface, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("create client: %w", err)
	}
	return cs, nil
}

// Kubectl returns the path of the kubectl built with the control plane.
func (k *Kube) Kubectl() string { return filepath.Join(k.Assets, "kubectl") }

func (k *Kube) writeKubeconfig(path, user, token string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["kubehpc"] = &clientcmdapi.Cluster{Server: k.Host, CertificateAuthority: k.CAFile}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["kubehpc"] = &clientcmdapi.Context{Cluster: "kubehpc", AuthInfo: user}
	cfg.CurrentContext = "kubehpc"
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		return fmt.Errorf("write kubeconfig %s: %w", path, err)
	}
	return nil
}

func writeServiceAccountKey(dir string) (keyPath, pubPath string, err error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return "", "", fmt.Errorf("generate service account key: %w", err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", fmt.Errorf("marshal service account key: %w", err)
	}
	keyPath, pubPath = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", keyPath, err)
	}
	if err := os.WriteFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o600); err != nil {
		return "", "", fmt.Errorf("write %s: %w", pubPath, err)
	}
	return keyPath, pubPath, nil
}

func writeTokenFile(path string, tokens []Token) error {
	var b strings.Builder
	for _, t := range tokens {
		uid := t.UID
		if uid == "" {
			uid = t.User
		}
		fmt.Fprintf(&b, "%s,%s,%s", t.Token, t.User, uid)
		if len(t.Groups) > 0 {
			fmt.Fprintf(&b, ",%q", strings.Join(t.Groups, ","))
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write token file: %w", err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
