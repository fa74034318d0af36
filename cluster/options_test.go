package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestOptions_Validate(t *testing.T) {
	peers := []string{"127.0.0.1:16221", "127.0.0.1:16222", "127.0.0.1:16223"}
	tests := []struct {
		name    string
		edit    func(o *Options)
		wantErr string // "" for valid
	}{
		{"three peers", func(o *Options) {}, ""},
		{"existing nats", func(o *Options) { o.ClusterListen, o.Peers, o.NATSURL = "", nil, "nats://127.0.0.1:4222" }, ""},
		{"no name", func(o *Options) { o.NodeName = "" }, "NodeName"},
		{"name with a dot", func(o *Options) { o.NodeName = "n.1" }, "NodeName"},
		{"listen not host:port", func(o *Options) { o.ClusterListen = "16221" }, "ClusterListen"},
		{"peer not host:port", func(o *Options) { o.Peers = append(o.Peers[:2:2], "x") }, "Peers"},
		{"self not among peers", func(o *Options) { o.ClusterListen = "127.0.0.1:9" }, "must include"},
		{"lease too short", func(o *Options) { o.LeaseTTL = 100 * time.Millisecond }, "LeaseTTL"},
		{"too many replicas", func(o *Options) { o.Replicas = 7 }, "Replicas"},
		{"bad engine option", func(o *Options) { o.Engine.HighWater = -1 }, "Engine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{NodeName: "n1", ClusterListen: peers[0], Peers: peers}
			tt.edit(&o)
			wantValidateErr(t, o.EnsureDefaults().Validate(), tt.wantErr)
		})
	}
}

func TestOptions_ReplicasFollowPeers(t *testing.T) {
	for _, tt := range []struct {
		peers []string
		url   string
		want  int
	}{
		{[]string{"a:1"}, "", 1},
		{[]string{"a:1", "b:1"}, "", 2},
		{[]string{"a:1", "b:1", "c:1", "d:1"}, "", 3},
		{nil, "nats://x:4222", 3},
	} {
		o := Options{Peers: tt.peers, NATSURL: tt.url}
		if got := o.EnsureDefaults().Replicas; got != tt.want {
			t.Errorf("peers %v, url %q: Replicas = %d; want %d", tt.peers, tt.url, got, tt.want)
		}
	}
}

func TestStatusTTL(t *testing.T) {
	tests := []struct {
		retention, want time.Duration
	}{
		{time.Hour, time.Hour},
		{-1, 0},
		{90*time.Second + 400*time.Millisecond, 90 * time.Second},
	}
	for _, tt := range tests {
		if got := statusTTL(tt.retention); got != tt.want {
			t.Errorf("statusTTL(%v) = %v; want %v", tt.retention, got, tt.want)
		}
	}
}

// TestStatusRetentionDefault: cluster mode keeps statuses
// DefaultStatusRetention unless the engine's options set a retention.
func TestStatusRetentionDefault(t *testing.T) {
	for _, tt := range []struct{ set, want time.Duration }{
		{0, DefaultStatusRetention},
		{3 * time.Hour, 3 * time.Hour},
		{-1, -1},
	} {
		o := Options{}
		o.Engine.StatusRetention = tt.set
		if got := o.EnsureDefaults().Engine.StatusRetention; got != tt.want {
			t.Errorf("StatusRetention %v after EnsureDefaults = %v; want %v", tt.set, got, tt.want)
		}
	}
}

func TestNodeRateShare(t *testing.T) {
	for _, c := range []struct {
		limit float64
		peers int
		want  float64
	}{
		{300, 3, 100},
		{1000, 4, 250},
		{300, 1, 300}, // one node
		{300, 0, 300}, // an existing NATS cluster: the node count is unknown
		{0, 3, 0},     // no limit
	} {
		if got := nodeRateShare(c.limit, c.peers); got != c.want {
			t.Errorf("nodeRateShare(%v, %d) = %v, want %v", c.limit, c.peers, got, c.want)
		}
	}
}

// wantValidateErr fails the test unless err is nil when want is "", or an
// error whose text names want.
func wantValidateErr(t *testing.T, err error, want string) {
	t.Helper()
	switch {
	case want == "" && err != nil:
		t.Fatalf("Validate = %v; want nil", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("Validate = %v; want an error naming %q", err, want)
	}
}
