package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/heraldpush/herald/credential"
)

const certUsage = `Usage:
  herald cert inspect [--password P | --password-file F] FILE

Prints what uploading FILE would see. For a .p12: subject, topic,
environments, validity, days left, and the error code of the first failing
check. For a .p8 (PEM): the key type, the key id when the file is named
AuthKey_<key id>.p8, and that the topic and team id are not in the file (the
upload names them). Exits non-zero when a check fails. A .p8 needs no
password. Without either flag the password is read from HERALD_CERT_PASSWORD;
prefer --password-file or the variable to --password, which other users can
see in the process list.
`

// runCert implements `herald cert SUBCOMMAND`.
func runCert(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, certUsage)
		return errors.New("missing subcommand: want inspect")
	}
	switch args[0] {
	case "inspect":
		return runCertInspect(args[1:], os.Stdout)
	case "testgen":
		return runCertTestgen(args[1:])
	case "-h", "-help", "--help", "help":
		fmt.Print(certUsage)
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown subcommand %q: want inspect", args[0])
}

// runCertInspect prints the inspection of one file to stdout.
func runCertInspect(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("cert inspect", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), certUsage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	password := fs.String("password", "", "the .p12 password")
	passwordFile := fs.String("password-file", "", `read the password from this file ("-" for standard input); one trailing newline is dropped`)
	files, err := parseInterspersed(fs, args)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		fs.Usage()
		return fmt.Errorf("want one FILE, got %d", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return fmt.Errorf("inspect: %w", err)
	}
	if credential.IsPEM(data) {
		// A .p8 token key (or a PEM certificate, which InspectP8 names).
		if err := credential.InspectP8(stdout, data, files[0]); err != nil {
			return fmt.Errorf("inspect %s: %w", files[0], err)
		}
		return nil
	}
	pw, err := certPassword(fs, *password, *passwordFile)
	if err != nil {
		return err
	}
	if err := credential.Inspect(stdout, data, pw, time.Now()); err != nil {
		return fmt.Errorf("inspect %s: %w", files[0], err)
	}
	return nil
}

// certPassword picks the password: --password, else --password-file, else
// HERALD_CERT_PASSWORD. The variable is read here rather than used as the
// flag's default so that -h never prints it.
func certPassword(fs *flag.FlagSet, password, passwordFile string) (string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	switch {
	case set["password"] && set["password-file"]:
		return "", errors.New("--password and --password-file are exclusive")
	case set["password"]:
		return password, nil
	case set["password-file"]:
		var b []byte
		var err error
		if passwordFile == "-" {
			b, err = io.ReadAll(os.Stdin)
		} else {
			b, err = os.ReadFile(passwordFile)
		}
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		// Drop only the newline an editor or echo adds: spaces may be part
		// of the password.
		b = bytes.TrimSuffix(bytes.TrimSuffix(b, []byte("\n")), []byte("\r"))
		return string(b), nil
	}
	return os.Getenv("HERALD_CERT_PASSWORD"), nil
}

// parseInterspersed parses flags wherever they appear among the positional
// arguments, so `herald cert inspect FILE --password P` works too; the
// standard flag package stops at the first positional argument.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}
