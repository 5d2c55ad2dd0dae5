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

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(app.Main(bootstrap.Tool.WithVersion(version), os.Args[1:], bootstrap.NewConfig()))
}
