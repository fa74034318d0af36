package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/heraldpush/herald/bench"
)

func runBench(args []string) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o bench.Options
	scenarios := fs.String("scenario", "single,c2c,group", "comma-separated: single, c2c, group, overload, idle-million, tenants, cluster, or all (all but cluster)")
	fs.IntVar(&o.Users, "users", 10_000, "c2c recipients, one device each")
	fs.IntVar(&o.Messages, "messages", 200_000, "c2c messages to deliver (single: half as many, one per request)")
	fs.IntVar(&o.SingleUsers, "single-users", 20_000, "single scenario recipients, one device each")
	fs.IntVar(&o.Connections, "connections", 64, "ingress connections")
	fs.IntVar(&o.Batch, "batch", 100, "messages per messages:batch request")
	fs.IntVar(&o.GroupSize, "group-size", 100_000, "group scenario members")
	fs.DurationVar(&o.Duration, "duration", 0, "overload scenario duration (default 30s)")
	fs.IntVar(&o.IdleDevices, "idle-devices", 1_000_000, "idle-million scenario devices")
	fs.Float64Var(&o.TenantRate, "tenant-rate", 2000, "per-certificate rate limit the tenants scenario checks")
	fs.BoolVar(&o.SkipReferences, "skip-references", false, "skip the h2load and bare apns2 reference runs")
	fs.StringVar(&o.Out, "out", "bench-results", "directory for the JSON report and the SVG chart")
	fs.Float64Var(&o.LatencyRate, "latency-rate", 0, "offered msgs/s of the c2c latency run (default: half of the measured peak)")
	fs.StringVar(&o.HeapProfile, "heap-profile", "", "save herald's heap profile at the end of idle-million to this file")
	fs.StringVar(&o.Profile, "profile", "", "save CPU profiles of herald to this file (c2c delivery), FILE.single and FILE.single-h2c (single-message ingest over HTTP/1.1 and h2c), FILE.latency (latency run), FILE.group (group fan-out), FILE.delivery-single (single-fed delivery) and FILE.delivery-single-h2c (the same over h2c)")
	fs.StringVar(&o.Herald, "herald", "", "herald binary to benchmark (default: this one)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *scenarios == "all" {
		*scenarios = "single,c2c,group,overload,idle-million,tenants"
	}
	o.Scenarios = strings.Split(*scenarios, ",")
	o.Progress = os.Stderr
	o.Command = "herald bench " + strings.Join(args, " ")
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	report, err := bench.Run(ctx, o)
	if report != nil {
		report.WriteTable(os.Stdout)
		jsonPath, svgPath, serr := report.Save(o.Out)
		if serr != nil {
			return fmt.Errorf("save report: %w", serr)
		}
		fmt.Printf("\nreport: %s\nchart:  %s\n", jsonPath, svgPath)
	}
	return err
}
