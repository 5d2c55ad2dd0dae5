// Command ldap-configmap reads users and groups from LDAP and writes the
// ConfigMaps (and, optionally, the user namespace annotations) that the
// admission policies read.
package main

import (
	"os"

	"github.com/kubehpc/kubehpc/ldap-configmap/mapsync"
	"github.com/kubehpc/kubehpc/pkg/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(app.Main(mapsync.Tool.WithVersion(version), os.Args[1:], mapsync.NewConfig()))
}
