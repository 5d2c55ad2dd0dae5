// Command demo runs the whole kubehpc story on a local control plane and LDAP
// server, for a person to read: make demo.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/kubehpc/kubehpc/e2e/story"
)

func main() { os.Exit(run()) }

func run() int {
	bin := flag.String("bin", "../bin", "Directory holding the four tool binaries (make build)")
	root := flag.String("root", "..", "Repository root")
	keep := flag.Bool("keep", false, "Keep the servers running after the story, until Ctrl-C")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	absBin, _ := filepath.Abs(*bin)
	absRoot, _ := filepath.Abs(*root)
	os.Setenv("KUBEHPC_ROOT", absRoot)
	s := story.New(story.Options{Root: absRoot, Bin: absBin, Out: os.Stdout})
	defer s.Stop()
	if err := s.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		return 1
	}
	if *keep {
		fmt.Printf("\nThe servers keep running: export KUBECONFIG=%s\nPress Ctrl-C to stop everything.\n", s.KubeconfigPath())
		<-ctx.Done()
	}
	fmt.Println("\nStopped everything; nothing is left behind.")
	return 0
}
