package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/heraldpush/herald/credential/credentialtest"
	"github.com/heraldpush/herald/mockapns"
	"github.com/heraldpush/herald/storage"
)

// startPartitionedNode starts a node of a partitioned cluster on natsURL
// that pushes to mock.
func startPartitionedNode(t *testing.T, name, natsURL, keyFile string, parts int, mock *mockapns.Server, caFile string) *Node {
	t.Helper()
	return startTestNodeWith(t, name, natsURL, keyFile, func(o *Options) {
		o.Partitions = parts
		o.Engine.APNsProductionURL, o.Engine.APNsSandboxURL, o.Engine.APNsCAFile = mock.URL(), mock.URL(), caFile
	})
}

// owned reads which partitions each node owns from its GET /cluster.
func owned(t *testing.T, nodes ...*Node) map[string][]int {
	t.Helper()
	out := map[string][]int{}
	for _, n := range nodes {
		a := call(t, n, "GET", "/cluster", "")
		var st nodeStatus
		if err := json.Unmarshal([]byte(a.body), &st); err != nil {
			t.Fatalf("GET /cluster on %s: %q: %v", n.o.NodeName, a.body, err)
		}
		out[n.o.NodeName] = st.Owned
	}
	return out
}

// waitEvenShares waits until nodes own every one of parts partitions,
// each exactly once, in shares that differ by at most one.
func waitEvenShares(t *testing.T, parts int, nodes ...*Node) map[string][]int {
	t.Helper()
	var got map[string][]int
	eventually(t, 30*time.Second, func() bool {
		got = owned(t, nodes...)
		seen := map[int]int{}
		lo, hi := parts, 0
		for _, ps := range got {
			for _, p := range ps {
				seen[p]++
			}
			lo, hi = min(lo, len(ps)), max(hi, len(ps))
		}
		if len(seen) != parts || hi-lo > 1 {
			return false
		}
		for _, c := range seen {
			if c != 1 {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprintf("partitions not owned once each in even shares: %v", got) })
	return got
}

func eventually(t *testing.T, within time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(msg())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startTestMock starts a mock APNs with o and writes its CA to a file.
func startTestMock(t *testing.T, o mockapns.Options) (*mockapns.Server, string) {
	t.Helper()
	mock, err := mockapns.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mock.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, mock.CAPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	return mock, caFile
}

// pushApp is an app made through createPushApp.
type pushApp struct {
	Key string `json:"api_key"`
}

// createPushApp creates app through one node and uploads a certificate
// through another; returns the app's key and the certificate's
// business_id.
func createPushApp(t *testing.T, via, certVia *Node, app string) (pushApp, int) {
	t.Helper()
	ca, err := credentialtest.NewAuthority()
	if err != nil {
		t.Fatal(err)
	}
	p12, err := ca.P12(credentialtest.LeafOptions{Kind: credentialtest.Universal, Topic: "com.example.chat", KeyType: "ecdsa"}, "pw", credentialtest.Modern)
	if err != nil {
		t.Fatal(err)
	}
	created := call(t, via, "POST", "/v1/apps", fmt.Sprintf(`{"app_id":%q}`, app))
	if created.status != 201 {
		t.Fatalf("create app = %+v", created)
	}
	var a pushApp
	json.Unmarshal([]byte(created.body), &a)
	return a, uploadCert(t, certVia, app, a.Key, p12)
}

func uploadCert(t *testing.T, n *Node, app, key string, p12 []byte) int {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	fw, _ := w.CreateFormFile("file", "cert.p12")
	fw.Write(p12)
	w.WriteField("password", "pw")
	w.WriteField("environment", "production")
	w.WriteField("name", "chat")
	w.Close()
	req, _ := http.NewRequest("POST", "http://"+n.Addr()+"/v1/apps/"+app+"/certificates", &buf)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct {
		BusinessID int `json:"business_id"`
	}
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != 201 || json.Unmarshal(raw, &out) != nil {
		t.Fatalf("upload certificate through %s = %d %s", n.o.NodeName, res.StatusCode, raw)
	}
	return out.BusinessID
}

// Three nodes of a partitioned cluster on one NATS server: they share the
// partitions evenly; an app made on one node is used on the others at
// once; user requests reach their partition's owner from any node;
// one-to-one and group messages given to any node are each pushed once,
// by the owner of the recipient's partition; when the node owning the
// most partitions shuts down, the others take its partitions and deliver
// what is given to them after.
func TestPartitioned_ThreeNodes(t *testing.T) {
	const parts = 8
	url := startTestNATS(t, 1<<20)
	mock, caFile := startTestMock(t, mockapns.Options{Record: true})
	keyFile := filepath.Join(t.TempDir(), "master.key")
	var nodes []*Node
	for _, name := range []string{"a", "b", "c"} {
		nodes = append(nodes, startPartitionedNode(t, name, url, keyFile, parts, mock, caFile))
	}
	waitEvenShares(t, parts, nodes...)
	app, bid := createPushApp(t, nodes[0], nodes[1], "demo")

	// Users in every partition, each registered through a node that is
	// not always its owner.
	var users []string
	tokens := map[string]string{}
	covered := map[int]bool{}
	for i := 0; len(covered) < parts || len(users) < 16; i++ {
		u := fmt.Sprintf("user%02d", i)
		covered[storage.PartitionOf("demo", u, parts)] = true
		users = append(users, u)
		tokens[u] = fmt.Sprintf("%064x", i+1)
		a := callAs(t, nodes[i%3], app.Key, "PUT", "/v1/apps/demo/users/"+u+"/apns",
			fmt.Sprintf(`{"business_id":%d,"token":"%s"}`, bid, tokens[u]))
		if a.status != 204 {
			t.Fatalf("register %s through %s = %+v", u, nodes[i%3].o.NodeName, a)
		}
		if got := callAs(t, nodes[(i+1)%3], app.Key, "GET", "/v1/apps/demo/users/"+u, ""); got.status != 200 || !strings.Contains(got.body, tokens[u]) {
			t.Fatalf("GET %s through another node = %+v", u, got)
		}
	}
	for _, u := range users {
		if a := callAs(t, nodes[0], app.Key, "PUT", "/v1/apps/demo/groups/all/members/"+u, ""); a.status != 204 {
			t.Fatalf("add %s to the group = %+v", u, a)
		}
	}

	send := func(via *Node, body string) {
		t.Helper()
		if a := callAs(t, via, app.Key, "POST", "/v1/apps/demo/messages", body); a.status != 202 {
			t.Fatalf("post through %s = %+v", via.o.NodeName, a)
		}
	}
	for i, u := range users {
		send(nodes[i%3], fmt.Sprintf(`{"from":"sender","to":"%s","elems":[{"type":"text","text":"one"}]}`, u))
	}
	send(nodes[2], `{"from":"sender","group_id":"all","elems":[{"type":"text","text":"group"}]}`)
	waitPushes := func(want int) {
		t.Helper()
		eventually(t, 20*time.Second, func() bool {
			for _, u := range users {
				if countPushes(mock, tokens[u]) < want {
					return false
				}
			}
			return true
		}, func() string { return fmt.Sprintf("not every user got %d pushes", want) })
		time.Sleep(200 * time.Millisecond) // time for a second push, if any, to show
		for _, u := range users {
			if n := countPushes(mock, tokens[u]); n != want {
				t.Errorf("%s got %d pushes, want %d", u, n, want)
			}
		}
	}
	waitPushes(2)

	// The node owning the most partitions shuts down: its leases are
	// released, the other two take them, and new messages reach everyone.
	shares := owned(t, nodes...)
	most := slices.MaxFunc(nodes, func(x, y *Node) int { return len(shares[x.o.NodeName]) - len(shares[y.o.NodeName]) })
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	most.Shutdown(sctx)
	cancel()
	var rest []*Node
	for _, n := range nodes {
		if n != most {
			rest = append(rest, n)
		}
	}
	waitEvenShares(t, parts, rest...)
	for i, u := range users {
		send(rest[i%2], fmt.Sprintf(`{"from":"sender","to":"%s","elems":[{"type":"text","text":"after"}]}`, u))
	}
	waitPushes(3)
}

func countPushes(m *mockapns.Server, token string) int {
	n := 0
	for _, r := range m.Received() {
		if r.Token == token {
			n++
		}
	}
	return n
}

// Admission holds against the cluster's backlog: messages given to one
// node for users whose partitions another node owns pile up there (APNs
// answers slowly), and the first node refuses new ones with 429
// overloaded once the cluster's backlog passes --high-water, though its
// own partitions have nothing waiting. GET /cluster shows both figures.
func TestPartitioned_AdmissionAcrossNodes(t *testing.T) {
	const (
		parts     = 4
		highWater = 30
	)
	url := startTestNATS(t, 1<<20)
	mock, caFile := startTestMock(t, mockapns.Options{Latency: 3 * time.Second})
	keyFile := filepath.Join(t.TempDir(), "master.key")
	var nodes []*Node
	for _, name := range []string{"a", "b"} {
		nodes = append(nodes, startTestNodeWith(t, name, url, keyFile, func(o *Options) {
			o.Partitions = parts
			o.Engine.APNsProductionURL, o.Engine.APNsSandboxURL, o.Engine.APNsCAFile = mock.URL(), mock.URL(), caFile
			o.Engine.HighWater, o.Engine.PartitionWindow = highWater, 4
		}))
	}
	shares := waitEvenShares(t, parts, nodes...)
	owner, ingress := nodes[0], nodes[1]
	app, bid := createPushApp(t, owner, ingress, "demo")
	// Recipients in the owner's partitions only.
	var users []string
	for i := 0; len(users) < 4; i++ {
		u := fmt.Sprintf("user%02d", i)
		if !slices.Contains(shares[owner.o.NodeName], storage.PartitionOf("demo", u, parts)) {
			continue
		}
		users = append(users, u)
		if a := callAs(t, owner, app.Key, "PUT", "/v1/apps/demo/users/"+u+"/apns",
			fmt.Sprintf(`{"business_id":%d,"token":"%064x"}`, bid, i+1)); a.status != 204 {
			t.Fatalf("register %s = %+v", u, a)
		}
	}

	var batch strings.Builder
	batch.WriteString(`{"messages":[`)
	for i := range 10 {
		if i > 0 {
			batch.WriteByte(',')
		}
		fmt.Fprintf(&batch, `{"from":"s","to":%q,"elems":[{"type":"text","text":"hi"}]}`, users[i%len(users)])
	}
	batch.WriteString(`]}`)
	accepted, refused := 0, answer{}
	deadline := time.Now().Add(20 * time.Second)
	for refused.status == 0 && time.Now().Before(deadline) {
		switch a := callAs(t, ingress, app.Key, "POST", "/v1/apps/demo/messages:batch", batch.String()); a.status {
		case 202:
			accepted += 10
		case 429:
			refused = a
		default:
			t.Fatalf("batch through %s = %+v", ingress.o.NodeName, a)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if refused.status != 429 || !strings.Contains(refused.body, `"overloaded"`) {
		t.Fatalf("%d messages accepted through %s, never refused as overloaded (last %+v); want a 429 past a backlog of %d",
			accepted, ingress.o.NodeName, refused, highWater)
	}
	if accepted < highWater {
		t.Errorf("refused after %d accepted; want at least the high-water mark %d", accepted, highWater)
	}
	var st nodeStatus
	if err := json.Unmarshal([]byte(call(t, ingress, "GET", "/cluster", "").body), &st); err != nil {
		t.Fatal(err)
	}
	if st.Backlog == nil || st.ClusterBacklog == nil || *st.Backlog != 0 || *st.ClusterBacklog < highWater {
		t.Errorf("GET /cluster on %s: backlog %v, cluster backlog %v; want 0 here and at least %d in the cluster",
			ingress.o.NodeName, st.Backlog, st.ClusterBacklog, highWater)
	}
	metrics := call(t, ingress, "GET", "/metrics", "")
	var gauge float64
	for _, line := range strings.Split(metrics.body, "\n") {
		if v, ok := strings.CutPrefix(line, "herald_admission_backlog_messages "); ok {
			fmt.Sscan(v, &gauge)
		}
	}
	if gauge < highWater {
		t.Errorf("herald_admission_backlog_messages on %s = %v; want at least %d", ingress.o.NodeName, gauge, highWater)
	}
}
