package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Figure is one measured number of a bench run.
type Figure struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	// Note explains the figure: a ratio to a reference, a goal, a caveat.
	Note string `json:"note,omitempty"`
}

// Sample is one point of a time series (throughput or latency over time).
type Sample struct {
	At    float64 `json:"t"` // seconds since the scenario started
	Value float64 `json:"v"`
}

// Report is the result of a bench run: the table, the series for the
// chart, and the machine it ran on.
type Report struct {
	Started  time.Time           `json:"started"`
	Machine  string              `json:"machine"`
	Command  string              `json:"command"`
	Figures  []Figure            `json:"figures"`
	Series   map[string][]Sample `json:"series"`
	Warnings []string            `json:"warnings,omitempty"`

	mu sync.Mutex
}

func newReport(command string) *Report {
	return &Report{Started: time.Now().UTC(), Machine: machine(), Command: command, Series: map[string][]Sample{}}
}

// Add records a figure.
func (r *Report) Add(scenario, name string, value float64, unit, note string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Figures = append(r.Figures, Figure{scenario, name, value, unit, note})
}

// Get returns a recorded figure's value (NaN if absent).
func (r *Report) Get(scenario, name string) float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.Figures {
		if f.Scenario == scenario && f.Name == name {
			return f.Value
		}
	}
	return math.NaN()
}

// Warn records something the reader must know about the run.
func (r *Report) Warn(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

func (r *Report) addSample(series string, at, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Series[series] = append(r.Series[series], Sample{at, v})
}

// WriteTable prints the figures as an aligned table.
func (r *Report) WriteTable(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fmt.Fprintf(w, "\nherald bench — %s\n%s\n\n", r.Started.Format(time.RFC3339), r.Machine)
	fmt.Fprintf(w, "%-12s %-50s %14s %-10s %s\n", "scenario", "figure", "value", "unit", "note")
	fmt.Fprintf(w, "%s\n", strings.Repeat("-", 110))
	for _, f := range r.ordered() {
		fmt.Fprintf(w, "%-12s %-50s %14s %-10s %s\n", f.Scenario, f.Name, formatValue(f.Value), f.Unit, f.Note)
	}
	for _, warn := range r.Warnings {
		fmt.Fprintf(w, "warning: %s\n", warn)
	}
}

// ordered returns the figures with leadScenario's first, each group in
// the order recorded. The caller holds r.mu.
func (r *Report) ordered() []Figure {
	out := make([]Figure, 0, len(r.Figures))
	for _, lead := range []bool{true, false} {
		for _, f := range r.Figures {
			if (f.Scenario == leadScenario) == lead {
				out = append(out, f)
			}
		}
	}
	return out
}

func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "-"
	case math.Abs(v) >= 1000:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// Save writes the JSON report and the SVG chart into dir and returns their paths.
func (r *Report) Save(dir string) (jsonPath, svgPath string, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	stamp := r.Started.Format("20060102-150405")
	jsonPath = filepath.Join(dir, "bench-"+stamp+".json")
	svgPath = filepath.Join(dir, "bench-"+stamp+".svg")
	r.mu.Lock()
	b, err := json.MarshalIndent(r, "", "  ")
	r.mu.Unlock()
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(jsonPath, b, 0o644); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(svgPath, []byte(r.svg()), 0o644); err != nil {
		return "", "", err
	}
	return jsonPath, svgPath, nil
}

// svg draws each series in its own panel: value against time.
func (r *Report) svg() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.Series))
	for name := range r.Series {
		names = append(names, name)
	}
	sortStrings(names)
	const width, panel, margin = 900, 220, 60
	height := max(1, len(names)) * (panel + 40)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, name := range names {
		s := r.Series[name]
		top := i*(panel+40) + 30
		maxT, maxV := 1e-9, 1e-9
		for _, p := range s {
			maxT, maxV = math.Max(maxT, p.At), math.Max(maxV, p.Value)
		}
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-weight="bold">%s (max %s)</text>`+"\n", margin, top-8, name, formatValue(maxV))
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#999"/>`+"\n", margin, top, width-2*margin, panel)
		var pts []string
		for _, p := range s {
			x := float64(margin) + p.At/maxT*float64(width-2*margin)
			y := float64(top+panel) - p.Value/maxV*float64(panel)
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x, y))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
		fmt.Fprintf(&b, `<text x="%d" y="%d">0</text><text x="%d" y="%d" text-anchor="end">%.0fs</text>`+"\n",
			margin, top+panel+14, width-margin, top+panel+14, maxT)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// machine describes the host for the report.
func machine() string {
	cpu := "unknown cpu"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "model name") {
				cpu = strings.TrimSpace(strings.SplitN(line, ":", 2)[1])
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores%s", cpu, numCPU(), mem)
}

// progress draws a one-line progress bar on w, redrawn in place.
type progress struct {
	w     io.Writer
	label string
	total int64
	start time.Time
}

func (p *progress) draw(done int64, extra string) {
	if p.w == nil {
		return
	}
	frac := 0.0
	if p.total > 0 {
		frac = math.Min(1, float64(done)/float64(p.total))
	}
	bar := strings.Repeat("█", int(frac*30)) + strings.Repeat("·", 30-int(frac*30))
	rate := float64(done) / math.Max(time.Since(p.start).Seconds(), 1e-9)
	fmt.Fprintf(p.w, "\r  %-28s %s %3.0f%% %9d  %8.0f/s %s\033[K", p.label, bar, frac*100, done, rate, extra)
}

func (p *progress) finish() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}
