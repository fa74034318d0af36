// Command herald is the push engine and its tools: serve, mockapns, bench,
// cert and demo. Each subcommand parses its flags and calls a package; the
// logic lives in engine, bench and credential.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

const usage = `herald — a self-hosted, multi-tenant APNs push engine

Usage:
  herald serve      [flags]   run the engine (see herald serve -h)
  herald mockapns   [flags]   run a mock APNs HTTP/2 server for tests and benchmarks
  herald bench      [flags]   run the benchmark harness
  herald cert inspect FILE    show what a certificate upload would see
  herald cert testgen --out DIR  write a test CA, .p12 and .p8 to try the API with mockapns
  herald demo                 a five-minute tour: mock APNs + engine + a few messages
`

func main() {
	os.Exit(run(os.Args[1:], os.Stderr))
}

// run runs the subcommand args[0] and returns the exit status: 0, 1 when
// the command failed, 2 for a usage error (unknown command, bad flag or
// setting), with the error on stderr.
func run(args []string, stderr io.Writer) int {
	if len(args) < 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = runServe(args[1:])
	case "mockapns":
		err = runMockAPNs(args[1:])
	case "bench":
		err = runBench(args[1:])
	case "cert":
		err = runCert(args[1:])
	case "demo":
		err = runDemo(args[1:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	default:
		fmt.Fprintf(stderr, "herald: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	code := exitCode(err)
	if code != 0 {
		fmt.Fprintf(stderr, "herald %s: %v\n", args[0], err)
	}
	return code
}

// usageError is a command line that cannot run: a flag that does not
// parse, or a setting its package's Options.Validate refuses. herald exits
// 2 for it, 1 for a command that fails once running.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitCode maps a command's error to herald's exit status.
func exitCode(err error) int {
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, new(usageError)):
		return 2
	default:
		return 1
	}
}

// parseFlags parses args into fs, taking each flag whose usage ends in
// "[NAME]" from the environment variable NAME first when it is set: every
// serve flag can also come from the environment (SPEC.md §5), the command
// line wins, and a bad value in either is a usageError.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		i := strings.LastIndexByte(f.Usage, '[')
		if i < 0 || !strings.HasSuffix(f.Usage, "]") {
			return
		}
		name := f.Usage[i+1 : len(f.Usage)-1]
		if v, ok := os.LookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s: invalid value %q for flag -%s: %w", name, v, f.Name, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return usageError{err}
	}
	err := fs.Parse(args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		return usageError{err}
	}
	return err
}
