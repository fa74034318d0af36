package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/mockapns"
)

// requestTimeout bounds every HTTP request to herald: an answer slower
// than this counts as a hang.
const requestTimeout = 10 * time.Second

// apiClient speaks herald's HTTP API with a plain net/http client.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string) *apiClient {
	tr := &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second}
	return &apiClient{base: base, hc: &http.Client{Timeout: requestTimeout, Transport: tr}}
}

func (c *apiClient) close() { c.hc.CloseIdleConnections() }

// do sends body (nil, or a value encoded as JSON) and returns the answer's
// status and body.
func (c *apiClient) do(method, path, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, token)
}

func (c *apiClient) send(req *http.Request, token string) (int, []byte, error) {
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// must is do for setup steps: it fails the test unless the answer is want,
// and decodes a JSON answer into out when out is not nil.
func (c *apiClient) must(t *testing.T, want int, method, path, token string, body, out any) {
	t.Helper()
	status, raw, err := c.do(method, path, token, body)
	mustAnswer(t, method+" "+path, want, status, raw, err, out)
}

func mustAnswer(t *testing.T, what string, want, status int, raw []byte, err error, out any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if status != want {
		t.Fatalf("%s = %d %s; want %d", what, status, raw, want)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s: answer %q: %v", what, raw, err)
		}
	}
}

// tenant is an app set up for the load: a certificate and users with one
// phone each.
type tenant struct {
	app, key string
	users    []string
}

const (
	testApp   = "1400000001"
	testTopic = "com.example.herald.e2e"
	sender    = "sender"
)

// setupTenant creates the app, uploads a production certificate and binds
// one device per user.
func setupTenant(t *testing.T, c *apiClient, users int) *tenant {
	t.Helper()
	var app struct {
		APIKey string `json:"api_key"`
	}
	c.must(t, 201, "POST", "/v1/apps", adminToken, map[string]string{"app_id": testApp}, &app)
	tn := &tenant{app: testApp, key: app.APIKey}
	businessID := uploadCertificate(t, c, tn)
	for i := range users {
		tn.users = append(tn.users, fmt.Sprintf("user-%03d", i))
	}
	parallel(len(tn.users), 8, func(i int) {
		body := map[string]any{"business_id": businessID, "token": deviceToken(i)}
		status, raw, err := c.do("PUT", "/v1/apps/"+tn.app+"/users/"+tn.users[i]+"/apns", tn.key, body)
		if err != nil || status != 204 {
			t.Errorf("bind %s = %d %s %v; want 204", tn.users[i], status, raw, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	return tn
}

// deviceToken is user i's device token: 32 bytes in hex.
func deviceToken(i int) string { return fmt.Sprintf("%064x", i+1) }

// uploadCertificate posts an Apple-shaped test .p12 and returns its
// business_id.
func uploadCertificate(t *testing.T, c *apiClient, tn *tenant) int {
	t.Helper()
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	const password = "e2e-secret"
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: testTopic, KeyType: "ecdsa"}, password, credentialtest.Modern)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", "push.p12")
	fw.Write(p12)
	w.WriteField("password", password)
	w.WriteField("environment", "production")
	w.WriteField("name", "e2e production")
	w.Close()
	req, err := http.NewRequest("POST", c.base+"/v1/apps/"+tn.app+"/certificates", &buf)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", w.FormDataContentType())
	status, raw, err := c.send(req, tn.key)
	var out struct {
		BusinessID int `json:"business_id"`
	}
	mustAnswer(t, "upload certificate", 201, status, raw, err, &out)
	return out.BusinessID
}

// parallel runs fn(0..n-1) on the given number of goroutines.
func parallel(n, workers int, fn func(i int)) {
	next := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fn(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// startMock starts the mock APNs in the test process, recording every
// request, and writes its CA for --apns-ca-file.
func startMock(t *testing.T) (*mockapns.Server, string) {
	t.Helper()
	mock, err := mockapns.Start(mockapns.Options{Record: true})
	if err != nil {
		t.Fatalf("start mock apns: %v", err)
	}
	t.Cleanup(func() { mock.Close() })
	caFile := filepath.Join(t.TempDir(), "mock-ca.pem")
	if err := mock.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	return mock, caFile
}

// eventually polls cond until it holds or timeout passes, and reports
// whether it held.
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for pause := 5 * time.Millisecond; !cond(); pause = min(2*pause, 100*time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pause)
	}
	return true
}

// startStack starts a mock APNs and herald on it, and sets up an app with
// users devices: what every test here begins with.
func startStack(t *testing.T, users int) (*mockapns.Server, *heraldProc, *apiClient, *tenant) {
	t.Helper()
	mock, caFile := startMock(t)
	h := newHeraldProc(t, heraldConfig{addr: freeAddr(t), dataDir: filepath.Join(t.TempDir(), "data"), apnsURL: mock.URL(), caFile: caFile})
	h.start()
	c := newAPIClient(h.base)
	return mock, h, c, setupTenant(t, c, users)
}
