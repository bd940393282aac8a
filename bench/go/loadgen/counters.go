package main

import (
	"sync/atomic"
)

// Response counters for every client together, cumulative since start. Marks and stats report
// differences of snapshots of these.
var knownTypes = []string{cdsType, edsType, ldsType, rdsType, sdsType, vhdsType}

const otherType = "other"

type counters struct {
	bytes [7]atomic.Int64 // index: position in knownTypes, last = other
	msgs  [7]atomic.Int64
}

type totals struct {
	Bytes [7]int64
	Msgs  [7]int64
}

var (
	rx counters
	// Requests sent by every client together (subscriptions, ACKs, NACKs).
	txMsgs atomic.Int64
	// Unix ns of the last response any client received.
	lastRxNs atomic.Int64
)

func typeIndex(t string) int {
	for i, k := range knownTypes {
		if k == t {
			return i
		}
	}
	return len(knownTypes)
}

func (c *counters) add(t string, size int) {
	i := typeIndex(t)
	c.bytes[i].Add(int64(size))
	c.msgs[i].Add(1)
}

func (c *counters) snapshot() totals {
	var t totals
	for i := range t.Bytes {
		t.Bytes[i] = c.bytes[i].Load()
		t.Msgs[i] = c.msgs[i].Load()
	}
	return t
}

type typeTotals struct {
	Bytes    int64 `json:"bytes"`
	Messages int64 `json:"messages"`
}

// diff returns total bytes, messages and the per-type split (types with traffic only).
func diff(end, start totals) (int64, int64, map[string]typeTotals) {
	by := map[string]typeTotals{}
	var b, m int64
	for i := range end.Bytes {
		db, dm := end.Bytes[i]-start.Bytes[i], end.Msgs[i]-start.Msgs[i]
		if dm == 0 && db == 0 {
			continue
		}
		name := otherType
		if i < len(knownTypes) {
			name = knownTypes[i]
		}
		by[name] = typeTotals{Bytes: db, Messages: dm}
		b += db
		m += dm
	}
	return b, m, by
}
