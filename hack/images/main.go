// Command images builds an OCI image per kubehpc tool without a container
// daemon (go-containerregistry's libraries), for several platforms, into an
// OCI image layout per tool, and optionally pushes them to a registry.
//
// Each image holds the tool's static binary and a CA bundle, nothing else;
// it runs as UID/GID 65532 with the binary as entrypoint. Everything in it is
// derived from the source and the commit time, so two builds of one commit
// give the same digests. `make images` runs it; see the README's "Images and
// releases".
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	var o Options
	fs := o.FlagSet()
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.Tools = fs.Args()
	if err := o.Validate(); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := Build(ctx, o, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "images: %v\n", err)
		return 1
	}
	return 0
}
