package jetstream

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/heraldpush/herald/storage"
)

// Subject layout: every record is one subject of the store's stream, holding
// one message (MaxMsgsPerSubject 1: a write replaces the record). Strings
// from outside (app, user, group ids, tokens, dedup keys) become one token
// each, "_" + base64url without padding, so dots, wildcards and empty ids
// cannot change the subject's shape. Seqs are 16 hex digits.
//
//	<p>.P.<app>                    app record
//	<p>.M.<name>                   process-wide metadata (and the seq reservation)
//	<p>.L.<seq>                    log entry (a tombstone once settled)
//	<p>.L.<part>.<seq>             the same in a partitioned log: part is the
//	                               seq's low byte, 2 hex digits
//	<p>.A.<app>.c.<business id>    certificate
//	<p>.A.<app>.u.<user>           user record
//	<p>.A.<app>.t.<token>          token owner (compare-and-set only)
//	<p>.A.<app>.g.<group>          group record
//	<p>.A.<app>.m.<group>.<user>   roster entry
//	<p>.A.<app>.d.<seq>            done marker (written before runs)
//	<p>.A.<app>.p.<seq>.<user>     push outcomes of a group message's run
//	                               of members (and, written before runs,
//	                               of a one-to-one message)
//	<p>.A.<app>.r.<bucket>.<id>    a settled run: outcomes and done marks
//	                               of the messages of one writer batch
//	                               whose seqs share a bucket (runs.go)
//	<p>.A.<app>.f.<seq>            fan-out cursor
//	<p>.A.<app>.o.<user>           conversation settings
//	<p>.A.<app>.k.<dedup key>      dedup record: seq and append time
//	<p>.A.<app>.x                  Matrix push gateway mapping
//	<p>.A.<app>.T                  Tencent IM façade settings
//	<p>.X.<matrix app_id>          Matrix app_id → app and business_id
//
// A delete is a tombstone (an empty message with the header delHeader) so
// it can be part of an atomic batch. The tombstones of settled log entries
// and fan-out cursors, written once per message, expire after
// tombstoneTTL; dedup records expire after the dedup window.

// tok encodes s as one subject token.
func tok(s string) string { return "_" + base64.RawURLEncoding.EncodeToString([]byte(s)) }

// untok decodes a token made by tok.
func untok(t string) (string, error) {
	if !strings.HasPrefix(t, "_") {
		return "", fmt.Errorf("%w: subject token %q", storage.ErrCorrupt, t)
	}
	b, err := base64.RawURLEncoding.DecodeString(t[1:])
	if err != nil {
		return "", fmt.Errorf("%w: subject token %q", storage.ErrCorrupt, t)
	}
	return string(b), nil
}

func seqTok(seq uint64) string { return fmt.Sprintf("%016x", seq) }

// subjects builds the subjects of one store, under its stream prefix.
type subjects struct {
	p string
	// parted: the log is partitioned (Options.Partitions > 1).
	parted bool
}

func (s subjects) all() string             { return s.p + ".>" }
func (s subjects) app(app string) string   { return s.p + ".P." + tok(app) }
func (s subjects) apps() string            { return s.p + ".P.*" }
func (s subjects) meta(name string) string { return s.p + ".M." + tok(name) }
func (s subjects) log(seq uint64) string {
	if s.parted {
		return s.partLogs(storage.PartitionOfSeq(seq)) + seqTok(seq)
	}
	return s.p + ".L." + seqTok(seq)
}

// logs matches every log entry, in either layout.
func (s subjects) logs() string { return s.p + ".L.>" }

// partLogs is the prefix of partition part's log subjects in a
// partitioned log (add "*" for a filter).
func (s subjects) partLogs(part int) string   { return fmt.Sprintf("%s.L.%02x.", s.p, part) }
func (s subjects) of(app, kind string) string { return s.p + ".A." + tok(app) + "." + kind }
func (s subjects) cert(app string, id uint64) string {
	return s.of(app, "c") + "." + seqTok(id)
}
func (s subjects) certs(app string) string        { return s.of(app, "c") + ".*" }
func (s subjects) user(app, user string) string   { return s.of(app, "u") + "." + tok(user) }
func (s subjects) token(app, token string) string { return s.of(app, "t") + "." + tok(token) }
func (s subjects) group(app, group string) string { return s.of(app, "g") + "." + tok(group) }
func (s subjects) member(app, group, user string) string {
	return s.of(app, "m") + "." + tok(group) + "." + tok(user)
}
func (s subjects) members(app, group string) string { return s.of(app, "m") + "." + tok(group) + ".*" }
func (s subjects) done(app string, seq uint64) string {
	return s.of(app, "d") + "." + seqTok(seq)
}
func (s subjects) push(app string, seq uint64, user string) string {
	return s.of(app, "p") + "." + seqTok(seq) + "." + tok(user)
}
func (s subjects) pushes(app string, seq uint64) string {
	return s.of(app, "p") + "." + seqTok(seq) + ".*"
}
func (s subjects) run(app string, bucket uint64, id string) string {
	return s.of(app, "r") + "." + seqTok(bucket) + "." + id
}
func (s subjects) runs(app string, bucket uint64) string {
	return s.of(app, "r") + "." + seqTok(bucket) + ".*"
}
func (s subjects) fanout(app string, seq uint64) string {
	return s.of(app, "f") + "." + seqTok(seq)
}
func (s subjects) convs(app, user string) string { return s.of(app, "o") + "." + tok(user) }
func (s subjects) dedup(app, key string) string  { return s.of(app, "k") + "." + tok(key) }
func (s subjects) matrixApps(app string) string  { return s.of(app, "x") }
func (s subjects) matrixID(appID string) string  { return s.p + ".X." + tok(appID) }
func (s subjects) tencent(app string) string     { return s.of(app, "T") }
func (s subjects) dedups() string                { return s.p + ".A.*.k.*" }

// lastTok returns the last token of subj, decoded.
func lastTok(subj string) (string, error) { return untok(subj[strings.LastIndexByte(subj, '.')+1:]) }
