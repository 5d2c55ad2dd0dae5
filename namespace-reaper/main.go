// Command namespace-reaper deletes user namespaces that nobody has used for
// longer than configured, and never one that is in use.
package main

import (
	"os"

	"github.com/kubehpc/kubehpc/namespace-reaper/reaper"
	"github.com/kubehpc/kubehpc/pkg/app"
)

var version = "dev"

func main() {
	os.Exit(app.Main(app.Tool{
		Name:             reaper.Name,
		MetricsNamespace: reaper.MetricsNamespace,
		Version:          version,
		EnvAliases:       reaper.EnvAliases(),
	}, os.Args[1:], &reaper.Config{}))
}
