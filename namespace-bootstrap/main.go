// Command namespace-bootstrap creates and keeps up to date each portal
// user's namespace: as the portal's pre-hook (--user), as an HTTPS service
// the pre-hook calls with the user's own token (--listen-address), and as a
// daemon that brings every managed namespace back to the template.
package main

import (
	"os"

	"github.com/kubehpc/kubehpc/namespace-bootstrap/bootstrap"
	"github.com/kubehpc/kubehpc/pkg/app"
)

var version = "dev"

func main() {
	os.Exit(app.Main(app.Tool{
		Name:             "namespace-bootstrap",
		MetricsNamespace: "namespace_bootstrap",
		Version:          version,
		EnvAliases:       bootstrap.EnvAliases,
	}, os.Args[1:], &bootstrap.Config{}))
}
