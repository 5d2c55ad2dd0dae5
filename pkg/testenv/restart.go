package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"time"
)

// StopAPIServer stops kube-apiserver (SIGTERM, then SIGKILL after 10 s),
// leaving etcd and the controller-manager running: clients get "connection
// refused" until StartAPIServer. For fault-injection tests; the package's
// other tests must not run in parallel with it.
func (k *Kube) StopAPIServer() {
	k.apiserver.stop(10 * time.Second)
}

// StartAPIServer starts kube-apiserver again, on the same port with the same
// flags, certificates and data, and waits until it is ready.
func (k *Kube) StartAPIServer(ctx context.Context) error {
	if k.apiserver != nil && !k.apiserver.exited() {
		return fmt.Errorf("kube-apiserver is running")
	}
	p, err := startProcess("kube-apiserver", filepath.Join(k.Dir, fmt.Sprintf("kube-apiserver-%d.log", time.Now().UnixNano())),
		filepath.Join(k.Assets, "kube-apiserver"), k.apiArgs...)
	if err != nil {
		return err
	}
	k.apiserver = p
	return p.waitFor(ctx, 90*time.Second, httpOK(k.Host+"/readyz", k.CAFile, k.AdminToken))
}
