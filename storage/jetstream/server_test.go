package jetstream

import (
	"net"
	"strings"
	"testing"
	"time"
)

// A server whose port is taken fails to start, saying why, instead of
// waiting for readiness until ReadyTimeout and reporting only that.
func TestStartServer_PortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name string
		cfg  ServerConfig
	}{
		{"client port", ServerConfig{Name: "c", Dir: t.TempDir(), Host: "127.0.0.1", Port: port, ReadyTimeout: time.Minute}},
		{"cluster port", ServerConfig{Name: "r", Dir: t.TempDir(), Host: "127.0.0.1", ClusterName: "h", ClusterPort: port,
			Routes: []string{"127.0.0.1:1"}, ReadyTimeout: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := StartServer(tt.cfg)
			if err == nil {
				s.Shutdown()
				t.Fatal("started on a taken port")
			}
			if !strings.Contains(err.Error(), "listening") {
				t.Errorf("error %q; want it to say the listener failed", err)
			}
		})
	}
}
