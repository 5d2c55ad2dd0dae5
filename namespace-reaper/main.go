// Command namespace-reaper deletes user namespaces that nobody has used for
// longer than configured, and never one that is in use.
package main

import (
	"os"

	"github.com/kubehpc/kubehpc/namespace-reaper/reaper"
	"github.com/kubehpc/kubehpc/pkg/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(app.Main(reaper.Tool.WithVersion(version), os.Args[1:], reaper.NewConfig()))
}
