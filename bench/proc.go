package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times; 100 on
// every Linux this runs on.
const clockTicks = 100

// Process is a child process the harness started (herald serve or herald
// mockapns), measured through /proc so its CPU and memory are its own.
type Process struct {
	Name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan error
}

// syncBuffer collects a child's output; exec writes it from its own
// goroutines while the harness may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		s.b.Reset() // keep the tail only: a long run's logs are not needed
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// StartProcess runs bin with args; its output is kept for error reports.
func StartProcess(name, bin string, args []string, env []string) (*Process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Process{Name: name, cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

// PID is the child's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Output is what the child printed so far.
func (p *Process) Output() string { return p.out.String() }

// WaitListening polls addr until it accepts a TCP connection, the child
// exits, or timeout passes.
func (p *Process) WaitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("%s exited before listening (%v): %s", p.Name, err, tail(p.Output()))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s not listening on %s after %v: %s", p.Name, addr, timeout, tail(p.Output()))
}

// Stop sends SIGTERM, waits up to grace, then kills.
func (p *Process) Stop(grace time.Duration) error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		err := <-p.done
		p.done <- err
		return fmt.Errorf("%s ignored SIGTERM for %v: %w", p.Name, grace, err)
	}
}

// Usage is a process's resource use at one moment.
type Usage struct {
	CPU     time.Duration // user + system
	RSS     int64         // resident set, bytes
	PeakRSS int64         // high-water mark of the resident set, bytes
}

// ReadUsage reads a process's CPU time and memory from /proc.
func ReadUsage(pid int) (Usage, error) {
	var u Usage
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the parenthesised command name; utime and stime are the
	// 14th and 15th fields of the whole line.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return u, errors.New("bench: unreadable /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return u, errors.New("bench: short /proc stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	defer status.Close()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		line := sc.Text()
		var kb int64
		if _, err := fmt.Sscanf(line, "VmRSS: %d kB", &kb); err == nil {
			u.RSS = kb << 10
		} else if _, err := fmt.Sscanf(line, "VmHWM: %d kB", &kb); err == nil {
			u.PeakRSS = kb << 10
		}
	}
	return u, sc.Err()
}

// Counters are a process's system call and scheduling counts, which say
// what one request costs besides CPU time: each read and write is a
// system call, each context switch a thread that slept and was woken.
type Counters struct {
	Reads, Writes int64 // read-like and write-like system calls (/proc/PID/io syscr, syscw)
	Switches      int64 // voluntary and involuntary context switches, all threads
}

// Sub returns c - o.
func (c Counters) Sub(o Counters) Counters {
	return Counters{c.Reads - o.Reads, c.Writes - o.Writes, c.Switches - o.Switches}
}

// ReadCounters reads a process's Counters from /proc. Threads that exited
// take their context switches with them; Go keeps its threads.
func ReadCounters(pid int) (Counters, error) {
	var c Counters
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return c, err
	}
	for _, line := range strings.Split(string(io), "\n") {
		if v, ok := strings.CutPrefix(line, "syscr: "); ok {
			c.Reads, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			c.Writes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return c, err
	}
	for _, t := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // the thread exited meanwhile
		}
		for _, line := range strings.Split(string(status), "\n") {
			if _, v, ok := strings.Cut(line, "ctxt_switches:"); ok {
				n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				c.Switches += n
			}
		}
	}
	return c, nil
}

// SelfCPU is this process's CPU time (the load generator's own cost).
func SelfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FreeAddr returns a loopback address with a port free right now.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tail(s string) string {
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return strings.TrimSpace(s)
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// captureProfile saves a CPU profile of herald over d to path.
func (e *env) captureProfile(path string, d time.Duration) error {
	return e.fetchProfile(path, fmt.Sprintf("profile?seconds=%d", int(d.Seconds())), d+30*time.Second)
}

// profileAsync starts a CPU profile of herald over d, saved to the
// profile path + suffix, when the options ask for profiles. The returned
// function waits for it.
func (e *env) profileAsync(suffix string, d time.Duration) (wait func()) {
	if e.opts.Profile == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := e.captureProfile(e.opts.Profile+suffix, d); err != nil {
			e.report.Warn("cpu profile %s: %v", suffix, err)
		}
	}()
	return func() { <-done }
}

// captureHeap saves herald's heap profile to path.
func (e *env) captureHeap(path string) error {
	return e.fetchProfile(path, "heap", 30*time.Second)
}

func (e *env) fetchProfile(path, which string, timeout time.Duration) error {
	return fetchProfileAt(e.pprofAddr, path, which, timeout)
}

// fetchProfileAt saves the pprof profile which of the process serving
// pprof at addr to path.
func fetchProfileAt(addr, path, which string, timeout time.Duration) error {
	c := &http.Client{Timeout: timeout}
	res, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/%s", addr, which))
	if err != nil {
		return err
	}
	defer res.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// CPUTimes are the machine's CPU times summed over its cores (the first
// line of /proc/stat), in clock ticks.
type CPUTimes struct {
	Idle, Total int64 // idle and iowait; all states
}

// ReadCPUTimes reads the machine's CPU times.
func ReadCPUTimes() (CPUTimes, error) {
	var c CPUTimes
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, err
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return c, errors.New("bench: unreadable /proc/stat")
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return c, fmt.Errorf("bench: /proc/stat field %d: %w", i+1, err)
		}
		// guest and guest_nice (fields 9 and 10) are already in user and nice.
		if i < 8 {
			c.Total += n
		}
		if i == 3 || i == 4 {
			c.Idle += n
		}
	}
	return c, nil
}

// IdleShare is the share of the machine's CPU time idle between o and c
// (0..1); NaN when no time passed.
func (c CPUTimes) IdleShare(o CPUTimes) float64 {
	if c.Total <= o.Total {
		return math.NaN()
	}
	return float64(c.Idle-o.Idle) / float64(c.Total-o.Total)
}
