// Command herald is the push engine and its tools: serve, mockapns, bench,
// cert and demo. Each subcommand parses its flags and calls a package; the
// logic lives in engine, bench and credential.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
)

const usage = `herald — a self-hosted, multi-tenant APNs push engine

Usage:
  herald serve      [flags]   run the engine (see herald serve -h)
  herald mockapns   [flags]   run a mock APNs HTTP/2 server for tests and benchmarks
  herald bench      [flags]   run the benchmark harness
  herald cert inspect FILE    show what a certificate upload would see
  herald demo                 a five-minute tour: mock APNs + engine + a few messages
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	args := os.Args[2:]
	switch os.Args[1] {
	case "serve":
		err = runServe(args)
	case "mockapns":
		err = runMockAPNs(args)
	case "bench":
		err = runBench(args)
	case "cert":
		err = runCert(args)
	case "demo":
		err = runDemo(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "herald: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "herald %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// envInt is envOr for integers; an unparsable value falls back to def.
func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// envOr returns the environment variable name's value, or def when unset:
// every serve flag can also come from the environment (SPEC.md §5).
func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}
