package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"mime/multipart"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/valyala/fasthttp"
)

// Client drives a herald engine's HTTP API the way an IM backend does. It
// is built on fasthttp so the load generator costs little CPU.
type Client struct {
	hc *fasthttp.HostClient
	// poster carries the message POSTs, the bench's load: leaner than hc.
	poster *poster
	addr   string
	Admin  string
	App    string
	Key    string
}

// NewClient returns a client for the engine at addr (host:port) using up
// to conns connections.
func NewClient(addr string, conns int) *Client {
	return &Client{addr: addr, poster: newPoster(addr, conns+8, 30*time.Second), hc: &fasthttp.HostClient{
		Addr: addr, MaxConns: conns + 8, MaxConnWaitTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}}
}

// Do sends one request; body may be nil. It returns the status and a copy
// of the answer's body.
func (c *Client) Do(method, path, token string, contentType string, body []byte) (int, []byte, error) {
	req, res := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(res)
	req.Header.SetMethod(method)
	req.SetRequestURI("http://" + c.addr + path)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.SetContentType(contentType)
	}
	req.SetBodyRaw(body)
	if err := c.hc.Do(req, res); err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return res.StatusCode(), bytes.Clone(res.Body()), nil
}

// PostMessages posts a message or batch body to path with the app's key,
// over the lean load connections. The answer's body is only valid until
// the next call unless keep is set.
func (c *Client) PostMessages(path string, body []byte, keep bool) (int, []byte, error) {
	return c.poster.Post(path, c.Key, body, keep)
}

// call sends JSON and decodes a JSON answer into out, failing unless the
// status is want.
func (c *Client) call(want int, method, path, token string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	status, res, err := c.Do(method, path, token, "application/json", body)
	if err != nil {
		return err
	}
	if status != want {
		return fmt.Errorf("%s %s = %d %s; want %d", method, path, status, res, want)
	}
	if out != nil {
		return json.Unmarshal(res, out)
	}
	return nil
}

// CreateApp creates app with the admin token and keeps its api_key.
func (c *Client) CreateApp(app string) error {
	var out struct {
		APIKey string `json:"api_key"`
	}
	if err := c.call(201, "POST", "/v1/apps", c.Admin, map[string]string{"app_id": app}, &out); err != nil {
		return err
	}
	c.App, c.Key = app, out.APIKey
	return nil
}

// UploadCertificate uploads a .p12 and returns its business_id.
func (c *Client) UploadCertificate(p12 []byte, password, env, name string) (int, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, _ := mw.CreateFormFile("file", "cert.p12")
	fw.Write(p12)
	mw.WriteField("password", password)
	mw.WriteField("environment", env)
	mw.WriteField("name", name)
	mw.Close()
	status, res, err := c.Do("POST", "/v1/apps/"+c.App+"/certificates", c.Key, mw.FormDataContentType(), buf.Bytes())
	if err != nil {
		return 0, err
	}
	if status != 201 {
		return 0, fmt.Errorf("upload certificate = %d %s", status, res)
	}
	var out struct {
		BusinessID int `json:"business_id"`
	}
	return out.BusinessID, json.Unmarshal(res, &out)
}

// SetAPNS binds token to user.
func (c *Client) SetAPNS(user string, businessID int, token string) error {
	return c.call(204, "PUT", "/v1/apps/"+c.App+"/users/"+user+"/apns", c.Key,
		map[string]any{"business_id": businessID, "token": token}, nil)
}

// SetProfile sets user's nickname.
func (c *Client) SetProfile(user, nickname string) error {
	return c.call(204, "PUT", "/v1/apps/"+c.App+"/users/"+user+"/profile", c.Key, map[string]any{"nickname": nickname}, nil)
}

// PutMember adds user to group.
func (c *Client) PutMember(group, user string) error {
	return c.call(204, "PUT", "/v1/apps/"+c.App+"/groups/"+group+"/members/"+user, c.Key, map[string]any{}, nil)
}

// PutGroup names group.
func (c *Client) PutGroup(group, name string) error {
	return c.call(204, "PUT", "/v1/apps/"+c.App+"/groups/"+group, c.Key, map[string]any{"name": name}, nil)
}

// Parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func Parallel(n, workers int, progress func(done int), fn func(i int) error) error {
	var next, done atomic.Int64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for firstErr.Load() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					firstErr.CompareAndSwap(nil, &err)
					return
				}
				if d := done.Add(1); progress != nil && d%1000 == 0 {
					progress(int(d))
				}
			}
		}()
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Metrics is a scrape of herald's /metrics: what the bench reads back.
type Metrics struct {
	Sent, Failed float64
	// SentBy and SettledBy split the pushes by business_id.
	SentBy, SettledBy map[string]float64
	// Unsettled is the log's backlog (herald_log_unsettled_messages).
	Unsettled float64
	// StallSeconds is the time Pebble delayed writes; GCPauseSeconds and
	// GCCount are the Go runtime's stop-the-world pauses.
	StallSeconds, GCPauseSeconds, GCCount float64
	// Flushes, FlushSeconds, Compactions and CompactionSeconds are Pebble's
	// background work: the usual cause of a latency tail.
	Flushes, FlushSeconds, Compactions, CompactionSeconds float64
	// ActiveUsers is how many user actors are in memory.
	ActiveUsers float64
	// GoHeapInuse and GoSys are the Go runtime's heap in use and all the
	// memory it holds from the OS; RSS beyond GoSys is Pebble's own
	// (memtables, block cache).
	GoHeapInuse, GoSys float64
	// Delivery is the cumulative herald_delivery_seconds histogram:
	// upper bounds and cumulative counts.
	Delivery Histogram
	// GroupEntries and GroupAppend are the ingest combiner's groups: single
	// messages per shared Append, and that Append's seconds (empty from a
	// herald without them).
	GroupEntries, GroupAppend Histogram
}

// Histogram is a cumulative Prometheus histogram.
type Histogram struct {
	Bounds []float64
	Counts []float64
	// Sum and Count are the histogram's sum of observations and their
	// number.
	Sum, Count float64
}

// Sub returns h minus an earlier scrape of the same histogram.
func (h Histogram) Sub(earlier Histogram) Histogram {
	out := Histogram{Bounds: h.Bounds, Counts: make([]float64, len(h.Counts)), Sum: h.Sum - earlier.Sum, Count: h.Count - earlier.Count}
	for i := range h.Counts {
		out.Counts[i] = h.Counts[i]
		if i < len(earlier.Counts) {
			out.Counts[i] -= earlier.Counts[i]
		}
	}
	return out
}

// Mean is the mean observation; NaN when empty.
func (h Histogram) Mean() float64 {
	if h.Count == 0 {
		return math.NaN()
	}
	return h.Sum / h.Count
}

// Quantile interpolates the q-quantile (0..1) in seconds; NaN when empty.
func (h Histogram) Quantile(q float64) float64 {
	if len(h.Counts) == 0 || h.Counts[len(h.Counts)-1] == 0 {
		return math.NaN()
	}
	total := h.Counts[len(h.Counts)-1]
	rank := q * total
	i := sort.SearchFloat64s(h.Counts, rank)
	if i >= len(h.Bounds) {
		return h.Bounds[len(h.Bounds)-1]
	}
	lo, loCount := 0.0, 0.0
	if i > 0 {
		lo, loCount = h.Bounds[i-1], h.Counts[i-1]
	}
	hi, hiCount := h.Bounds[i], h.Counts[i]
	if math.IsInf(hi, 1) {
		return lo
	}
	if hiCount == loCount {
		return hi
	}
	return lo + (hi-lo)*(rank-loCount)/(hiCount-loCount)
}

// Scrape reads herald's /metrics.
func (c *Client) Scrape() (Metrics, error) {
	var m Metrics
	status, body, err := c.Do("GET", "/metrics", "", "", nil)
	if err != nil {
		return m, err
	}
	if status != 200 {
		return m, fmt.Errorf("GET /metrics = %d", status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		return m, fmt.Errorf("parse /metrics: %w", err)
	}
	m.SentBy, m.SettledBy = map[string]float64{}, map[string]float64{}
	if f := families["herald_pushes_total"]; f != nil {
		for _, metric := range f.Metric {
			var bid, outcome string
			for _, l := range metric.Label {
				switch l.GetName() {
				case "business_id":
					bid = l.GetValue()
				case "outcome":
					outcome = l.GetValue()
				}
			}
			v := metric.GetCounter().GetValue()
			switch outcome {
			case "sent":
				m.Sent += v
				m.SentBy[bid] += v
			case "failed":
				m.Failed += v
			}
			m.SettledBy[bid] += v
		}
	}
	if f := families["herald_log_unsettled_messages"]; f != nil && len(f.Metric) > 0 {
		m.Unsettled = f.Metric[0].GetGauge().GetValue()
	}
	if f := families["herald_store_write_stall_seconds_total"]; f != nil && len(f.Metric) > 0 {
		m.StallSeconds = f.Metric[0].GetCounter().GetValue()
	}
	for name, v := range map[string]*float64{
		"herald_store_flushes_total": &m.Flushes, "herald_store_flush_seconds_total": &m.FlushSeconds,
		"herald_store_compactions_total": &m.Compactions, "herald_store_compaction_seconds_total": &m.CompactionSeconds,
	} {
		if f := families[name]; f != nil && len(f.Metric) > 0 {
			*v = f.Metric[0].GetCounter().GetValue()
		}
	}
	if f := families["go_memstats_heap_inuse_bytes"]; f != nil && len(f.Metric) > 0 {
		m.GoHeapInuse = f.Metric[0].GetGauge().GetValue()
	}
	if f := families["go_memstats_sys_bytes"]; f != nil && len(f.Metric) > 0 {
		m.GoSys = f.Metric[0].GetGauge().GetValue()
	}
	if f := families["herald_active_user_actors"]; f != nil && len(f.Metric) > 0 {
		m.ActiveUsers = f.Metric[0].GetGauge().GetValue()
	}
	if f := families["go_gc_duration_seconds"]; f != nil && len(f.Metric) > 0 {
		m.GCPauseSeconds = f.Metric[0].GetSummary().GetSampleSum()
		m.GCCount = float64(f.Metric[0].GetSummary().GetSampleCount())
	}
	for name, h := range map[string]*Histogram{"herald_delivery_seconds": &m.Delivery,
		"herald_ingest_group_entries": &m.GroupEntries, "herald_ingest_group_append_seconds": &m.GroupAppend} {
		if f := families[name]; f != nil && len(f.Metric) > 0 {
			ph := f.Metric[0].GetHistogram()
			for _, b := range ph.GetBucket() {
				h.Bounds = append(h.Bounds, b.GetUpperBound())
				h.Counts = append(h.Counts, float64(b.GetCumulativeCount()))
			}
			h.Sum, h.Count = ph.GetSampleSum(), float64(ph.GetSampleCount())
		}
	}
	return m, nil
}
