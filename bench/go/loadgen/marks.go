package main

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// A mark is a change the orchestrator is about to make on the server; every client records when
// it received a response carrying it and when its ACK of that response was sent.
type mark struct {
	id      string
	typ     string
	names   []string
	removed bool
	// changed (-content): the response must carry the names with a body that differs from what
	// the client held; with no names, any resource of the type whose body changed.
	changed   bool
	perClient bool
	t0        time.Time
	k         int
	recv      []atomic.Int64 // ns after t0, +1 (0: not yet)
	ack       []atomic.Int64
	acked     atomic.Int64
	done      chan struct{}
	once      sync.Once
	start     totals
}

var (
	marksMu     sync.RWMutex
	marksActive []*mark
	activeMarks atomic.Int64
)

func addMark(m *mark) {
	marksMu.Lock()
	marksActive = append(marksActive, m)
	activeMarks.Store(int64(len(marksActive)))
	marksMu.Unlock()
}

func removeMark(m *mark) {
	marksMu.Lock()
	for i, x := range marksActive {
		if x == m {
			marksActive = append(marksActive[:i:i], marksActive[i+1:]...)
			break
		}
	}
	activeMarks.Store(int64(len(marksActive)))
	marksMu.Unlock()
}

// matchMarks returns the active marks of type t that this response (received at `at`) delivers
// to client id for the first time.
func matchMarks(id int, t string, at time.Time, names, removed []string, sotw bool, changed map[string]bool) []*mark {
	var hits []*mark
	var inResp map[string]bool
	var inRemoved map[string]bool
	marksMu.RLock()
	defer marksMu.RUnlock()
	for _, m := range marksActive {
		if m.typ != t || !m.t0.Before(at) || id >= m.k || m.recv[id].Load() != 0 {
			continue
		}
		ok := true
		if m.changed {
			ok = len(changed) > 0
			for _, n := range m.names {
				if !changed[n] {
					ok = false
					break
				}
			}
		} else if m.removed && !sotw {
			if inRemoved == nil {
				inRemoved = setOf(removed)
			}
			for _, n := range m.names {
				if !inRemoved[n] {
					ok = false
					break
				}
			}
		} else {
			if inResp == nil {
				inResp = setOf(names)
			}
			for _, n := range m.names {
				// SotW removal: the name is absent from the (state-of-the-world) response.
				if inResp[n] == m.removed {
					ok = false
					break
				}
			}
		}
		if ok {
			m.recv[id].Store(int64(at.Sub(m.t0)) + 1)
			hits = append(hits, m)
		}
	}
	return hits
}

func setOf(xs []string) map[string]bool {
	s := make(map[string]bool, len(xs))
	for _, x := range xs {
		s[x] = true
	}
	return s
}

func (m *mark) ackedBy(id int, at time.Time) {
	if m.ack[id].Load() != 0 {
		return
	}
	m.ack[id].Store(int64(at.Sub(m.t0)) + 1)
	if m.acked.Add(1) == int64(m.k) {
		m.once.Do(func() { close(m.done) })
	}
}

type quantiles struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type markResult struct {
	Mark      string                `json:"mark"`
	Clients   int                   `json:"clients"`
	Delivered int                   `json:"delivered"`
	RecvMs    quantiles             `json:"recvMs"`
	AckMs     quantiles             `json:"ackMs"`
	Buckets   orderedBuckets        `json:"buckets"`
	Bytes     int64                 `json:"bytes"`
	Messages  int64                 `json:"messages"`
	ByType    map[string]typeTotals `json:"byType"`
	// With "perClient": each client's ACK time in ms after t0 (-1: not delivered).
	AckByClient []float64 `json:"ackByClient,omitempty"`
}

// Istio's pilot_proxy_convergence_time buckets (seconds).
var bucketBounds = []float64{0.1, 0.5, 1, 3, 5, 10, 20, 30}
var bucketNames = []string{"0.1", "0.5", "1", "3", "5", "10", "20", "30", "+Inf"}

// orderedBuckets marshals as a JSON object with the keys in bucket order.
type orderedBuckets []int

func (b orderedBuckets) MarshalJSON() ([]byte, error) {
	out := []byte{'{'}
	for i, n := range b {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, bucketNames[i]...)
		out = append(out, '"', ':')
		out = appendInt(out, n)
	}
	return append(out, '}'), nil
}

func appendInt(b []byte, n int) []byte {
	if n == 0 {
		return append(b, '0')
	}
	var tmp [20]byte
	i := len(tmp)
	for n > 0 {
		i--
		tmp[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, tmp[i:]...)
}

func quantilesOf(ms []float64) quantiles {
	if len(ms) == 0 {
		return quantiles{}
	}
	sort.Float64s(ms)
	return quantiles{P50: percentile(ms, 50), P90: percentile(ms, 90), P99: percentile(ms, 99), Max: ms[len(ms)-1]}
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// waitMark blocks until every client ACKed the mark or the timeout passes, then reports.
func waitMark(m *mark, timeout time.Duration) markResult {
	select {
	case <-m.done:
	case <-time.After(timeout - time.Since(m.t0)):
	}
	removeMark(m)
	end := rx.snapshot()
	var recv, ack, byClient []float64
	if m.perClient {
		byClient = make([]float64, m.k)
	}
	buckets := make(orderedBuckets, len(bucketNames))
	for i := 0; i < m.k; i++ {
		if r := m.recv[i].Load(); r != 0 {
			recv = append(recv, round3(float64(r-1)/1e6))
		}
		a := m.ack[i].Load()
		if a == 0 {
			if byClient != nil {
				byClient[i] = -1
			}
			buckets[len(buckets)-1]++
			continue
		}
		ms := round3(float64(a-1) / 1e6)
		if byClient != nil {
			byClient[i] = ms
		}
		ack = append(ack, ms)
		for j, b := range bucketBounds {
			if ms/1000 <= b {
				buckets[j]++
			}
		}
		buckets[len(buckets)-1]++
	}
	bytes, msgs, by := diff(end, m.start)
	return markResult{Mark: m.id, Clients: m.k, Delivered: len(ack), RecvMs: quantilesOf(recv), AckMs: quantilesOf(ack),
		Buckets: buckets, Bytes: bytes, Messages: msgs, ByType: by, AckByClient: byClient}
}
