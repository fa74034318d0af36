package mockapns

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/uuid"
)

// lockedBuffer is a bytes.Buffer that a test may read while the mock's
// flush loop writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// receiptsIn decodes the receipts the mock wrote to out.
func receiptsIn(t *testing.T, out *lockedBuffer) []Receipt {
	t.Helper()
	b := out.String()
	var got []Receipt
	n, err := ReadReceipts(strings.NewReader(b), func(r Receipt) { got = append(got, r) })
	if err != nil || n != int64(len(b)) {
		t.Fatalf("ReadReceipts = %d, %v; want %d, nil (whole records only)", n, err, len(b))
	}
	return got
}

func TestParseApnsID(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{testApnsID, true},
		{"123E4567-E89B-12D3-A456-426614174000", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"ffffffff-ffff-ffff-ffff-ffffffffffff", true},
		{"", false},
		{"123e4567e89b12d3a456426614174000", false},      // no dashes
		{"123e4567-e89b-12d3-a456-42661417400", false},   // short
		{"123e4567-e89b-12d3-a456-4266141740000", false}, // long
		{"123e4567-e89b-12d3-a456_426614174000", false},  // dash misplaced
		{"123e4567-e89b-12d3-a456-42661417400g", false},  // not hex
		{"{23e4567-e89b-12d3-a456-426614174000", false},
	} {
		got, ok := ParseApnsID(tc.in)
		if ok != tc.ok {
			t.Errorf("ParseApnsID(%q) ok = %v; want %v", tc.in, ok, tc.ok)
			continue
		}
		if ok {
			if want := uuid.MustParse(tc.in); got != [16]byte(want) {
				t.Errorf("ParseApnsID(%q) = %x; want %x", tc.in, got, want)
			}
		}
	}
}

func TestReceipt_RoundTrip(t *testing.T) {
	id, _ := ParseApnsID(testApnsID)
	want := []Receipt{
		{ApnsID: id, At: time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC).UnixNano()},
		{ApnsID: [16]byte{0xff, 1, 2}, At: 0},
		{ApnsID: [16]byte{}, At: -1}, // before 1970: the sign survives
		{ApnsID: [16]byte{15: 9}, At: 1<<63 - 1},
	}
	var log []byte
	for _, r := range want {
		log = AppendReceipt(log, r)
	}
	if len(log) != len(want)*ReceiptSize {
		t.Fatalf("%d records take %d bytes; want %d", len(want), len(log), len(want)*ReceiptSize)
	}
	// A partial record at the end is a write still in progress: left for
	// the next read.
	partial := append(bytes.Clone(log), 1, 2, 3)
	readers := map[string]func() ([]byte, int64){
		"Whole":   func() ([]byte, int64) { return log, int64(len(log)) },
		"Partial": func() ([]byte, int64) { return partial, int64(len(log)) },
	}
	for name, input := range readers {
		for _, chunking := range []string{"Full", "OneByte", "Half"} {
			t.Run(name+"/"+chunking, func(t *testing.T) {
				b, wantN := input()
				r := bytes.NewReader(b)
				src := map[string]io.Reader{
					"Full": r, "OneByte": iotest.OneByteReader(r), "Half": iotest.HalfReader(r),
				}[chunking]
				var got []Receipt
				n, err := ReadReceipts(src, func(r Receipt) { got = append(got, r) })
				if err != nil || n != wantN {
					t.Fatalf("ReadReceipts = %d, %v; want %d, nil", n, err, wantN)
				}
				if len(got) != len(want) {
					t.Fatalf("read %d receipts; want %d", len(got), len(want))
				}
				for i := range want {
					if got[i] != want[i] {
						t.Errorf("receipt %d = %+v; want %+v", i, got[i], want[i])
					}
				}
			})
		}
	}
	t.Run("ReadError", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := ReadReceipts(iotest.ErrReader(boom), func(Receipt) {})
		if !errors.Is(err, boom) {
			t.Errorf("ReadReceipts(failing reader) = %v; want it to wrap %v", err, boom)
		}
	})
}

func TestServer_Receipts(t *testing.T) {
	t.Parallel()
	var out lockedBuffer
	m := startMock(t, Options{Receipts: &out})
	c := newClient(t, m)

	before := time.Now()
	if res := mustPush(t, c, m, pushRequest{header: map[string]string{"apns-id": testApnsID}}); res.status != http.StatusOK {
		t.Fatalf("push = %d; want 200", res.status)
	}
	after := time.Now()
	// No apns-id: the mock makes one up, which no provider could match.
	mustPush(t, c, m, pushRequest{})
	// Not a UUID: answered 400 BadMessageId, nothing to record.
	if res := mustPush(t, c, m, pushRequest{header: map[string]string{"apns-id": "not-a-uuid"}}); res.status != http.StatusBadRequest {
		t.Fatalf("push with a bad apns-id = %d; want 400", res.status)
	}
	// Rejected requests are received all the same.
	if res := mustPush(t, c, m, pushRequest{header: map[string]string{"apns-id": "00000000-0000-0000-0000-000000000001"}, body: ptr("")}); res.status != http.StatusBadRequest {
		t.Fatalf("push with an empty payload = %d; want 400", res.status)
	}

	// The flush loop writes while the mock runs.
	waitFor(t, "receipts written", func() bool { return len(receiptsIn(t, &out)) == 2 })
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	got := receiptsIn(t, &out)
	if len(got) != 2 {
		t.Fatalf("after Close: %d receipts; want 2", len(got))
	}
	want, _ := ParseApnsID(testApnsID)
	if got[0].ApnsID != want {
		t.Errorf("receipt 0 apns-id = %x; want %x (%s)", got[0].ApnsID, want, testApnsID)
	}
	// Wall clock, between sending the request and reading its answer.
	if at := time.Unix(0, got[0].At); at.Before(before) || at.After(after) {
		t.Errorf("receipt 0 at %v; want within the push, %v to %v", at, before, after)
	}
	if want := [16]byte{15: 1}; got[1].ApnsID != want {
		t.Errorf("receipt 1 apns-id = %x; want %x", got[1].ApnsID, want)
	}
}

// failingWriter fails every write.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

func TestServer_ReceiptsWriteError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	m, err := Start(Options{Receipts: failingWriter{boom}})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, m)
	mustPush(t, c, m, pushRequest{header: map[string]string{"apns-id": testApnsID}})
	if err := m.Close(); !errors.Is(err, boom) {
		t.Errorf("Close() = %v; want it to wrap %v", err, boom)
	}
}

// BenchmarkReceiptLog_Add is the mock's cost per request with receipts on.
func BenchmarkReceiptLog_Add(b *testing.B) {
	l := newReceiptLog(io.Discard)
	now := time.Now()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.add(testApnsID, now)
		if i%100_000 == 0 {
			l.flush() // as the flush loop would: the buffers stay small
		}
	}
}
