// Command job-pod-reaper deletes portal-launched pods, and the Services,
// ConfigMaps and Secrets of their job, when their walltime runs out.
package main

import (
	"os"

	"github.com/kubehpc/kubehpc/job-pod-reaper/reaper"
	"github.com/kubehpc/kubehpc/pkg/app"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	os.Exit(app.Main(reaper.Tool.WithVersion(version), os.Args[1:], reaper.NewConfig()))
}
