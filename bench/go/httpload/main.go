// HTTP/1.1 load generator and upstream for the data-plane benchmark (bench/dataplane/run.ts).
//
// Load mode (default): an open-model, fixed-arrival-rate client. Requests are scheduled at
// -rate per second (send time i = start + i/rate) and handed to -c keep-alive connections;
// each connection has at most one request in flight (HTTP/1.1, no pipelining), so when all
// connections are busy a scheduled request waits in the queue. Latency is measured from the
// request's SCHEDULED send time to the end of its response body, so queueing behind a slow
// response is counted (no coordinated omission). Requests scheduled during -warmup are sent
// but not recorded; then -duration is recorded. Progress goes to stderr; stdout gets
//
//	measure-start          when the recorded window begins
//	measure-end            when the last recorded request has been scheduled
//	{...}                  one JSON line with the result
//
// and the process exits (at most -timeout after measure-end).
//
// Serve mode (-serve ADDR): an HTTP/1.1 upstream answering every request with 200 and a
// -size byte body; prints "ready" on stdout once listening; exits after -lifetime.
//
// Both modes run anywhere, including inside a network namespace (ip netns exec NS httpload ...).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type result struct {
	Target      string  `json:"target"`
	Connections int     `json:"connections"`
	Rate        float64 `json:"rate"`
	DurationS   float64 `json:"durationS"`
	WarmupS     float64 `json:"warmupS"`
	Scheduled   int64   `json:"scheduled"`   // requests scheduled in the recorded window
	Requests    int64   `json:"requests"`    // of those, completed (any status)
	Errors      int64   `json:"errors"`      // transport errors, timeouts, never-sent (queue overflow or unfinished at exit)
	Non2xx      int64   `json:"non2xx"`      // completed with a status outside 200-299
	AchievedRps float64 `json:"achievedRps"` // completed recorded requests / recorded window
	Reconnects  int64   `json:"reconnects"`  // connections opened after the initial -c
	BodyBytes   int64   `json:"bodyBytes"`   // body size of the first response (sanity check)
	MeanMs      float64 `json:"meanMs"`
	P50Ms       float64 `json:"p50Ms"`
	P90Ms       float64 `json:"p90Ms"`
	P99Ms       float64 `json:"p99Ms"`
	P999Ms      float64 `json:"p999Ms"`
	MaxMs       float64 `json:"maxMs"`
	// How late the scheduler queued requests (part of every latency; the same for every setup).
	SchedLagP50Ms float64 `json:"schedLagP50Ms"`
	SchedLagP99Ms float64 `json:"schedLagP99Ms"`
	FirstError    string  `json:"firstError,omitempty"`
}

type job struct {
	at       time.Time // scheduled send time
	recorded bool
}

func main() {
	target := flag.String("target", "", "URL to load, e.g. http://10.86.0.3:8080/ (load mode)")
	host := flag.String("host", "", "Host header (default: the URL's host)")
	conns := flag.Int("c", 16, "keep-alive connections")
	rate := flag.Float64("rate", 1000, "requests per second (fixed arrival rate)")
	duration := flag.Duration("duration", 30*time.Second, "recorded window")
	warmup := flag.Duration("warmup", 5*time.Second, "load before the recorded window (not recorded)")
	timeout := flag.Duration("timeout", 5*time.Second, "per-request timeout (connect, write, read); also the drain time at the end")
	serve := flag.String("serve", "", "serve mode: listen on ADDR (e.g. 0.0.0.0:8080) and answer every request")
	size := flag.Int("size", 1024, "serve mode: response body bytes")
	lifetime := flag.Duration("lifetime", 30*time.Minute, "serve mode: exit after this long")
	flag.Parse()

	if *serve != "" {
		runServer(*serve, *size, *lifetime)
		return
	}
	if *target == "" || *conns < 1 || *rate <= 0 || *duration <= 0 || *warmup < 0 {
		fmt.Fprintln(os.Stderr, "httpload: need -target URL, -c >= 1, -rate > 0, -duration > 0, -warmup >= 0 (or -serve ADDR)")
		os.Exit(2)
	}
	res, err := runLoad(*target, *host, *conns, *rate, *duration, *warmup, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpload:", err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

// ---------------------------------------------------------------------------------------
// Serve mode

func runServer(addr string, size int, lifetime time.Duration) {
	body := make([]byte, size)
	for i := range body {
		body[i] = 'a' + byte(i%26)
	}
	length := strconv.Itoa(size)
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h["Content-Type"] = []string{"application/octet-stream"}
		h["Content-Length"] = []string{length}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "httpload -serve:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 10 * time.Minute}
	fmt.Println("ready")
	go func() {
		time.Sleep(lifetime)
		fmt.Fprintln(os.Stderr, "httpload -serve: lifetime over, exiting")
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "httpload -serve:", err)
		os.Exit(1)
	}
}

// ---------------------------------------------------------------------------------------
// Load mode

type conn struct {
	addr    string
	request []byte
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
}

func (k *conn) dial() error {
	c, err := net.DialTimeout("tcp", k.addr, k.timeout)
	if err != nil {
		return err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	k.c = c
	k.br = bufio.NewReaderSize(c, 16<<10)
	return nil
}

func (k *conn) close() {
	if k.c != nil {
		_ = k.c.Close()
		k.c = nil
	}
}

// do sends one request and reads the whole response; returns status and body length.
func (k *conn) do() (int, int64, error) {
	_ = k.c.SetDeadline(time.Now().Add(k.timeout))
	if _, err := k.c.Write(k.request); err != nil {
		return 0, 0, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return 0, 0, err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, 0, err
	}
	if resp.Close {
		k.close()
	}
	return resp.StatusCode, n, nil
}

func runLoad(target, host string, conns int, rate float64, duration, warmup, timeout time.Duration) (*result, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("-target %q: want http://host:port/path", target)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	if host == "" {
		host = u.Host
	}
	path := u.RequestURI()
	request := []byte("GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: weft-httpload\r\nAccept: */*\r\n\r\n")

	// Open every connection first (and fail fast when the target is unreachable).
	workers := make([]*conn, conns)
	for i := range workers {
		workers[i] = &conn{addr: addr, request: request, timeout: timeout}
		if err := workers[i].dial(); err != nil {
			for _, w := range workers[:i] {
				w.close()
			}
			return nil, fmt.Errorf("connecting to %s: %w", addr, err)
		}
	}

	interval := time.Duration(float64(time.Second) / rate)
	total := int64((warmup + duration) / interval)
	warmN := int64(warmup / interval)
	queue := make(chan job, total+1)

	var (
		mu         sync.Mutex
		firstError string
		latencies  = make([][]int64, conns) // per worker, microseconds
		errs       atomic.Int64
		non2xx     atomic.Int64
		completed  atomic.Int64
		reconnects atomic.Int64
		bodyBytes  atomic.Int64
	)
	bodyBytes.Store(-1)
	noteError := func(err error) {
		errs.Add(1)
		mu.Lock()
		if firstError == "" {
			firstError = err.Error()
		}
		mu.Unlock()
	}

	// The schedule starts at `start`; after stopAt (end of schedule + timeout) queued requests
	// are no longer sent, so the run ends within about 2 x timeout after measure-end.
	start := time.Now().Add(10 * time.Millisecond)
	stopAt := start.Add(warmup + duration + timeout)
	var wg sync.WaitGroup
	for i, w := range workers {
		wg.Add(1)
		go func(i int, w *conn) {
			defer wg.Done()
			defer w.close()
			for j := range queue {
				if time.Now().After(stopAt) { // too late to send: counted, not sent
					if j.recorded {
						noteError(errors.New("not sent: still queued at the end of the drain time"))
					}
					continue
				}
				if w.c == nil {
					if err := w.dial(); err != nil {
						if j.recorded {
							noteError(err)
						}
						continue
					}
					reconnects.Add(1)
				}
				status, n, err := w.do()
				done := time.Now()
				if err != nil {
					w.close()
					if j.recorded {
						noteError(err)
					}
					continue
				}
				bodyBytes.CompareAndSwap(-1, n)
				if !j.recorded {
					continue
				}
				completed.Add(1)
				if status < 200 || status > 299 {
					non2xx.Add(1)
				}
				latencies[i] = append(latencies[i], done.Sub(j.at).Microseconds())
			}
		}(i, w)
	}

	runtime.LockOSThread() // the schedule loop keeps this thread; see preciseSleep
	_ = setTimerSlack(1)
	lags := make([]int64, 0, total-warmN) // how late the scheduler queued each recorded request
	// Request i is due at start + i*interval; a late scheduler catches up by queueing
	// several at once (their latency still counts from their due time).
	fmt.Fprintf(os.Stderr, "httpload: %d connections to %s, %.0f rps, warmup %s, recorded %s\n", conns, addr, rate, warmup, duration)
	for i := int64(0); i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		if d := time.Until(due); d > 0 {
			preciseSleep(d)
		}
		if i == warmN {
			fmt.Println("measure-start")
		}
		if i >= warmN {
			lags = append(lags, time.Since(due).Microseconds())
		}
		queue <- job{at: due, recorded: i >= warmN}
	}
	fmt.Println("measure-end")
	close(queue)

	// Every in-flight request ends within `timeout` (socket deadline); queued ones after stopAt are dropped.
	wg.Wait()

	var all []int64
	for _, l := range latencies {
		all = append(all, l...)
	}
	sort.Slice(all, func(a, b int) bool { return all[a] < all[b] })
	scheduled := total - warmN
	res := &result{
		Target: target, Connections: conns, Rate: rate, DurationS: duration.Seconds(), WarmupS: warmup.Seconds(),
		Scheduled: scheduled, Requests: completed.Load(), Non2xx: non2xx.Load(), Reconnects: reconnects.Load(),
		BodyBytes: bodyBytes.Load(), FirstError: firstError,
	}
	// Every recorded request either completed or was counted in errs.
	res.Errors = errs.Load()
	res.AchievedRps = float64(res.Requests) / duration.Seconds()
	if len(all) > 0 {
		var sum int64
		for _, v := range all {
			sum += v
		}
		res.MeanMs = float64(sum) / float64(len(all)) / 1000
		res.P50Ms = quantile(all, 0.50)
		res.P90Ms = quantile(all, 0.90)
		res.P99Ms = quantile(all, 0.99)
		res.P999Ms = quantile(all, 0.999)
		res.MaxMs = float64(all[len(all)-1]) / 1000
	}
	if len(lags) > 0 {
		sort.Slice(lags, func(a, b int) bool { return lags[a] < lags[b] })
		res.SchedLagP50Ms = quantile(lags, 0.50)
		res.SchedLagP99Ms = quantile(lags, 0.99)
	}
	return res, nil
}

// preciseSleep sleeps with the kernel's timer precision: time.Sleep on Linux wakes up to
// about 1 ms late (measured here: median 0.5 ms at 1000 rps), which would be added to every
// latency. The scheduler goroutine runs on its own locked OS thread with 1 ns timer slack
// and calls nanosleep(2) directly.
func preciseSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem
	}
}

// quantile of sorted microsecond values, in ms (nearest rank).
func quantile(sorted []int64, q float64) float64 {
	idx := int(q*float64(len(sorted))+0.999999) - 1
	idx = min(max(idx, 0), len(sorted)-1)
	return float64(sorted[idx]) / 1000
}

// setTimerSlack sets this thread's timer slack (PR_SET_TIMERSLACK, default 50 µs).
func setTimerSlack(ns uintptr) error {
	const prSetTimerslack = 29
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetTimerslack, ns, 0); e != 0 {
		return e
	}
	return nil
}
