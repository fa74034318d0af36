package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/heraldpush/herald/bench"
	"github.com/heraldpush/herald/mockapns"
)

// runMockAPNs is `herald mockapns`: a mock APNs HTTP/2 TLS server for tests,
// `herald demo` and `herald bench`. It runs until SIGINT or SIGTERM.
func runMockAPNs(args []string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return mockAPNsMain(ctx, args, os.Stdout, os.Stderr)
}

// mockAPNsMain runs the mock until ctx is done; stdout gets the URL, the
// periodic and the final counts, stderr the usage.
func mockAPNsMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mockapns", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		opts          mockapns.Options
		maxStreams    uint
		caOut         string
		receiptsOut   string
		statsInterval time.Duration
		dropEvery     time.Duration
		goAwayEvery   time.Duration
		noopListen    string
	)
	fs.StringVar(&opts.Addr, "listen", "127.0.0.1:2197", "`address` to listen on (keep it on loopback)")
	fs.StringVar(&caOut, "ca-out", "", "write the PEM root certificate to trust to `file` (for herald serve --apns-ca-file)")
	fs.DurationVar(&opts.Latency, "latency", 0, "delay added before every answer")
	fs.UintVar(&maxStreams, "max-streams", 1000, "SETTINGS_MAX_CONCURRENT_STREAMS per connection")
	fs.Func("fault", "answer a share of pushes with an error, as `STATUS:REASON:RATE[:TOPIC]` (e.g. 503:ServiceUnavailable:0.05, or only for one apns-topic); repeatable",
		func(s string) error {
			f, err := parseFault(s)
			if err != nil {
				return err
			}
			opts.Faults = append(opts.Faults, f)
			return nil
		})
	fs.BoolVar(&opts.Record, "record", false, "keep every request in memory (grows without bound)")
	fs.StringVar(&receiptsOut, "receipts-out", "", "write to `file`, for every request with a UUID apns-id, a 24-byte record: the id's 16 bytes and the receipt time in Unix nanoseconds (little-endian int64); flushed every 100 ms and at exit")
	fs.DurationVar(&statsInterval, "stats-interval", 0, "print the counts every `interval` (0: only at exit)")
	fs.DurationVar(&dropEvery, "drop-every", 0, "drop all connections abruptly every `interval` (0: never)")
	fs.DurationVar(&goAwayEvery, "goaway-every", 0, "send a graceful GOAWAY on all connections every `interval` (0: never)")
	fs.StringVar(&noopListen, "noop-http-listen", "", "also answer every plain HTTP/1.1 request on `address` with a 202 and nothing else: the ceiling herald bench compares single-message ingest with")
	if err := fs.Parse(args); err != nil {
		return err // flag.ErrHelp included: main exits quietly on it
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if maxStreams == 0 || maxStreams > 1<<31-1 {
		return fmt.Errorf("--max-streams %d outside 1..2^31-1", maxStreams)
	}
	opts.MaxConcurrentStreams = uint32(maxStreams)

	var receipts *os.File
	if receiptsOut != "" {
		var err error
		if receipts, err = os.Create(receiptsOut); err != nil {
			return fmt.Errorf("receipts: %w", err)
		}
		defer receipts.Close() // on early returns; the normal path checks Close below
		opts.Receipts = receipts
	}
	m, err := mockapns.Start(opts)
	if err != nil {
		return err
	}
	if receipts != nil {
		fmt.Fprintf(stdout, "mockapns: receipts written to %s\n", receiptsOut)
	}
	if caOut != "" {
		if err := m.WriteCA(caOut); err != nil {
			m.Close()
			return err
		}
		fmt.Fprintf(stdout, "mockapns: CA written to %s\n", caOut)
	}
	fmt.Fprintf(stdout, "mockapns: listening on %s\n", m.URL())
	if noopListen != "" {
		noop, err := bench.StartNoopHTTP(noopListen)
		if err != nil {
			m.Close()
			return err
		}
		defer noop.Close()
		fmt.Fprintf(stdout, "mockapns: no-op HTTP/1.1 on %s\n", noop.Addr())
	}

	// The tickers' goroutines are owned here and waited for before Close.
	var wg sync.WaitGroup
	every := func(d time.Duration, f func()) {
		if d <= 0 {
			return
		}
		wg.Go(func() {
			t := time.NewTicker(d)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					f()
				}
			}
		})
	}
	every(statsInterval, func() { fmt.Fprintf(stdout, "mockapns: %s\n", formatMockStats(m.Stats())) })
	every(dropEvery, m.DropConnections)
	every(goAwayEvery, m.GoAway)

	<-ctx.Done()
	wg.Wait()
	err = m.Close()
	if receipts != nil {
		// After the mock's Close, which writes the last receipts.
		if cerr := receipts.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close receipts: %w", cerr))
		}
	}
	fmt.Fprintf(stdout, "mockapns: stopped: %s\n", formatMockStats(m.Stats()))
	return err
}

// parseFault reads STATUS:REASON:RATE, such as 410:Unregistered:0.01.
func parseFault(s string) (mockapns.Fault, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 && len(parts) != 4 {
		return mockapns.Fault{}, fmt.Errorf("fault %q: want STATUS:REASON:RATE or STATUS:REASON:RATE:TOPIC", s)
	}
	status, err := strconv.Atoi(parts[0])
	if err != nil {
		return mockapns.Fault{}, fmt.Errorf("fault %q: status: %w", s, err)
	}
	rate, err := strconv.ParseFloat(parts[2], 64)
	if err != nil {
		return mockapns.Fault{}, fmt.Errorf("fault %q: rate: %w", s, err)
	}
	f := mockapns.Fault{Status: status, Reason: parts[1], Rate: rate}
	if len(parts) == 4 {
		f.Topic = parts[3] // only pushes with this apns-topic
	}
	// The mock validates ranges when it starts.
	return f, nil
}

// formatMockStats renders counts on one line: total, then by status.
func formatMockStats(s mockapns.Stats) string {
	var b strings.Builder
	fmt.Fprintf(&b, "requests=%d", s.Total)
	statuses := make([]int, 0, len(s.ByStatus))
	for status := range s.ByStatus {
		statuses = append(statuses, status)
	}
	slices.Sort(statuses)
	for _, status := range statuses {
		fmt.Fprintf(&b, " %d=%d", status, s.ByStatus[status])
	}
	fmt.Fprintf(&b, " connections=%d live=%d handshake_errors=%d protocol_errors=%d refused_streams=%d",
		s.Connections, s.LiveConnections, s.HandshakeErrors, s.ProtocolErrors, s.RefusedStreams)
	return b.String()
}
