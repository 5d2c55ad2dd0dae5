package daemon

import (
	"net"
	"net/http"
	"testing"

	"github.com/kubehpc/kubehpc/pkg/admin"
)

func listenAdmin(t *testing.T, r *Runner) (net.Listener, *admin.Server) {
	t.Helper()
	srv := &admin.Server{Addr: "127.0.0.1:0", Gatherer: r.deps.Registry, Ready: r.Ready, Log: r.deps.Log}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	return ln, srv
}

func get(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
