package bench

import (
	"bytes"
	"math"
	"os"
	"strings"
	"testing"
)

func TestReportTable_LeadScenarioFirst(t *testing.T) {
	r := newReport("test")
	r.Add("reference", "a", 1, "x", "")
	r.Add("c2c", "b", 2, "x", "")
	r.Add(leadScenario, "c", 3, "x", "")
	r.Add("group", "d", 4, "x", "")
	r.Add(leadScenario, "e", 5, "x", "")
	var out bytes.Buffer
	r.WriteTable(&out)
	var got []string
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && len(f[1]) == 1 {
			got = append(got, f[1])
		}
	}
	if want := "c e a b d"; strings.Join(got, " ") != want {
		t.Errorf("table order = %v; want %s", got, want)
	}
}

func TestSingleRatios(t *testing.T) {
	e := &env{opts: Options{Connections: 64, Batch: 100}, report: newReport("test")}
	r := e.report
	r.Add("reference", apns2RateName, 20_000, "pushes/s", "")
	r.Add(leadScenario, singleRateName, 30_000, "pushes/s", "")
	r.Add(leadScenario, singleCPUName, 30, "µs", "")
	r.Add("c2c", c2cCPUName, 15, "µs", "")
	r.Add("c2c", noopCPUName, 9, "µs", "")
	r.Add("c2c", "ceiling: no-op HTTP/1.1 202 server (64 conns)", 100_000, "req/s", "")
	r.Add("c2c", "durable ingest, single messages (64 conns)", 40_000, "msgs/s", "")
	e.singleRatios()
	for name, want := range map[string]float64{
		"CPU per push ÷ batch-fed c2c's":        2,
		"pushes/s ÷ bare apns2 loop's":          1.5,
		"single-message ingest ÷ no-op ceiling": 0.4,
	} {
		if got := r.Get(leadScenario, name); math.Abs(got-want) > 1e-9 {
			t.Errorf("%s = %v; want %v", name, got, want)
		}
	}

	// Without the references (--skip-references, no c2c) no ratio is made up.
	e = &env{opts: Options{Connections: 64, Batch: 100}, report: newReport("test")}
	e.report.Add(leadScenario, singleCPUName, 30, "µs", "")
	e.singleRatios()
	if n := len(e.report.Figures); n != 1 {
		t.Errorf("singleRatios without references added %d figures; want none", n-1)
	}
}

func TestReadCounters(t *testing.T) {
	before, err := ReadCounters(os.Getpid())
	if err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	f, err := os.CreateTemp(t.TempDir(), "w")
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := f.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	after, err := ReadCounters(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after.Sub(before); d.Writes < 10 || d.Switches < 0 {
		t.Errorf("counters after 10 writes: %+v; want at least 10 writes", d)
	}
}
