package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"google.golang.org/grpc"
)

// -watch: after the result line, commands arrive on stdin (one JSON object per line) and each
// gets JSON lines on stdout. See README.md in this directory for the protocol.

var (
	outMu           sync.Mutex
	nackOutstanding atomic.Int64
)

func emit(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": err.Error()})
	}
	outMu.Lock()
	os.Stdout.Write(append(b, '\n'))
	outMu.Unlock()
}

type command struct {
	Cmd       string             `json:"cmd"`
	ID        string             `json:"id"`
	Type      string             `json:"type"`
	Names     []string           `json:"names"`
	Removed   bool               `json:"removed"`
	Changed   bool               `json:"changed"`
	PerClient bool               `json:"perClient"`
	QuietMs   *int64             `json:"quietMs"`
	Name      string             `json:"name"`
	Writes    map[string]float64 `json:"writes"`
	TimeoutMs *int64             `json:"timeoutMs"`
	Count     *int               `json:"count"`
}

type watcher struct {
	t0        time.Time // when the clients were started
	newClient func(id, nodeIdx int, conn *grpc.ClientConn, onSync func(*client)) *client
	dial      func() (*grpc.ClientConn, error)
	perConn   int
	ctx       context.Context
	clients   []*client
	mode      string
	quiet     time.Duration
	start     totals
	pending   sync.WaitGroup // marks and reconnects still to report
	marksByID map[string]bool
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return round3(tv(ru.Utime) + tv(ru.Stime))
}

// serve reads commands until stdin closes; returns then (outstanding reports still pending).
func (w *watcher) serve(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		at := time.Now()
		line := sc.Bytes()
		if len(trimSpace(line)) == 0 {
			continue
		}
		var cmd command
		if err := json.Unmarshal(line, &cmd); err != nil {
			emit(map[string]string{"error": fmt.Sprintf("malformed command %q: %v", string(line), err)})
			continue
		}
		if err := w.handle(cmd, at); err != nil {
			emit(map[string]string{"error": err.Error()})
		}
	}
	if err := sc.Err(); err != nil {
		emit(map[string]string{"error": "reading stdin: " + err.Error()})
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func timeoutOf(c command) time.Duration {
	if c.TimeoutMs == nil || *c.TimeoutMs <= 0 {
		return 30 * time.Second
	}
	return time.Duration(*c.TimeoutMs) * time.Millisecond
}

// spread picks n of the k clients, evenly spaced.
func spread(k, n int) []int {
	if n > k {
		n = k
	}
	out := make([]int, n)
	for i := range out {
		out[i] = i * k / n
	}
	return out
}

func (w *watcher) handle(c command, at time.Time) error {
	switch c.Cmd {
	case "mark":
		if c.ID == "" || c.Type == "" || (len(c.Names) == 0 && !c.Changed) {
			return fmt.Errorf("mark needs id, type and a non-empty names array (or \"changed\": true)")
		}
		if c.Changed && !*contentHash {
			return fmt.Errorf("mark %q: \"changed\" needs the loadgen started with -content", c.ID)
		}
		if w.marksByID[c.ID] {
			return fmt.Errorf("mark %q was already used", c.ID)
		}
		w.marksByID[c.ID] = true
		k := len(w.clients)
		names := make([]string, len(c.Names))
		for i, n := range c.Names {
			names[i] = intern(n)
		}
		m := &mark{id: c.ID, typ: c.Type, names: names, removed: c.Removed, changed: c.Changed, perClient: c.PerClient, t0: at, k: k,
			recv: make([]atomic.Int64, k), ack: make([]atomic.Int64, k), done: make(chan struct{}), start: rx.snapshot()}
		if k == 0 {
			close(m.done)
		}
		addMark(m)
		emit(map[string]string{"marked": c.ID})
		timeout := timeoutOf(c)
		w.pending.Add(1)
		go func() {
			defer w.pending.Done()
			emit(waitMark(m, timeout))
		}()
	case "stats":
		now := rx.snapshot()
		bytes, msgs, by := diff(now, w.start)
		allBytes, allMsgs, _ := diff(now, totals{})
		emit(map[string]any{"stats": statsResult{Bytes: bytes, Messages: msgs, ByType: by, CPUSeconds: cpuSeconds(), Requests: txMsgs.Load(), StreamRetries: streamRetries.Load(), BytesSinceStart: allBytes, MessagesSinceStart: allMsgs}})
	case "reconnect":
		if c.Count == nil || *c.Count <= 0 {
			return fmt.Errorf("reconnect needs a positive count")
		}
		op := newReconnect(w, spread(len(w.clients), *c.Count), at)
		timeout := timeoutOf(c)
		for _, cl := range op.clients {
			cl.requestReconnect(op)
		}
		w.pending.Add(1)
		go func() {
			defer w.pending.Done()
			emit(op.wait(timeout))
		}()
	case "nack":
		if c.Type == "" || c.Count == nil || *c.Count <= 0 {
			return fmt.Errorf("nack needs type and a positive count")
		}
		idx := spread(len(w.clients), *c.Count)
		for _, i := range idx {
			cl := w.clients[i]
			cl.nackMu.Lock()
			if cl.nack == nil {
				cl.nack = map[string]int{}
			}
			cl.nack[c.Type]++
			cl.nackMu.Unlock()
			nackOutstanding.Add(1)
		}
		emit(map[string]int{"nacking": len(idx)})
	case "quiet", "churn-begin", "churn-end", "storm":
		return w.handleScenario(c, at)
	default:
		return fmt.Errorf("unknown command %q (known: mark, stats, reconnect, nack, quiet, churn-begin, churn-end, storm)", c.Cmd)
	}
	return nil
}

type statsResult struct {
	Bytes      int64                 `json:"bytes"`
	Messages   int64                 `json:"messages"`
	ByType     map[string]typeTotals `json:"byType"`
	CPUSeconds float64               `json:"cpuSeconds"`
	// Responses received by all clients since start (the initial sync included).
	BytesSinceStart    int64 `json:"bytesSinceStart"`
	MessagesSinceStart int64 `json:"messagesSinceStart"`
	// Requests sent by all clients since start (subscriptions, ACKs, NACKs), storm clients included.
	Requests int64 `json:"requests"`
	// Streams re-opened after a failure since start.
	StreamRetries int64 `json:"streamRetries"`
}

// reconnectOp: N clients reopen their stream; each reports when it is synced again.
type reconnectOp struct {
	w          *watcher
	clients    []*client
	index      map[int]int // client id -> position in clients
	start      time.Time
	startBytes []int64
	startMsgs  []int64
	readyNs    []atomic.Int64 // ns after start, +1
}

func newReconnect(w *watcher, idx []int, at time.Time) *reconnectOp {
	op := &reconnectOp{w: w, index: map[int]int{}, start: at, readyNs: make([]atomic.Int64, len(idx))}
	for i, ci := range idx {
		cl := w.clients[ci]
		op.clients = append(op.clients, cl)
		op.index[cl.id] = i
		op.startBytes = append(op.startBytes, cl.rxBytes.Load())
		op.startMsgs = append(op.startMsgs, cl.rxMsgs.Load())
	}
	return op
}

func (op *reconnectOp) ready(i int, at time.Time) {
	op.readyNs[i].CompareAndSwap(0, int64(at.Sub(op.start))+1)
}

type resyncQuantiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

type reconnectResult struct {
	Reconnected int             `json:"reconnected"`
	Resynced    int             `json:"resynced"`
	ResyncMs    resyncQuantiles `json:"resyncMs"`
	Bytes       int64           `json:"bytes"`
	Messages    int64           `json:"messages"`
}

// done reports whether client i has resynced, and when (ms after the command). Delta clients
// that kept their state may get no response at all, so they count once they hold everything
// and no response arrived for the quiet period; their time is then the later of that moment
// and their last ACK.
func (op *reconnectOp) done(i int, now time.Time) (bool, float64) {
	r := op.readyNs[i].Load()
	if r == 0 {
		return false, 0
	}
	at := r - 1
	if op.w.mode == "delta" {
		cl := op.clients[i]
		if last := cl.lastRxNs.Load(); now.UnixNano()-last < int64(op.w.quiet) {
			return false, 0
		}
		if a := cl.lastAckNs.Load() - op.start.UnixNano(); a > at {
			at = a
		}
	}
	return true, round3(float64(at) / 1e6)
}

func (op *reconnectOp) wait(timeout time.Duration) reconnectResult {
	deadline := op.start.Add(timeout)
	var ms []float64
	for {
		now := time.Now()
		ms = ms[:0]
		for i := range op.clients {
			if ok, t := op.done(i, now); ok {
				ms = append(ms, t)
			}
		}
		if len(ms) == len(op.clients) || now.After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	res := reconnectResult{Reconnected: len(op.clients), Resynced: len(ms)}
	if len(ms) > 0 {
		sort.Float64s(ms)
		res.ResyncMs = resyncQuantiles{P50: percentile(ms, 50), P99: percentile(ms, 99), Max: ms[len(ms)-1]}
	}
	for i, cl := range op.clients {
		res.Bytes += cl.rxBytes.Load() - op.startBytes[i]
		res.Messages += cl.rxMsgs.Load() - op.startMsgs[i]
		cl.resync.CompareAndSwap(op, nil)
	}
	return res
}
