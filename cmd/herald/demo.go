package main

import (
	"flag"
	"os"

	"github.com/heraldpush/herald/bench"
)

func runDemo(args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	dataDir := fs.String("data-dir", "", "keep the demo's data here (default: a temporary directory, removed afterwards)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return bench.RunDemo(os.Stdout, bench.DemoOptions{DataDir: *dataDir})
}
