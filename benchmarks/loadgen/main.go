// loadgen: the HTTP load generator of benchmarks/serve_vs_feast.py (standard library only).
//
// It POSTs request bodies (one per line of -bodies, cycled) to -url, either
//
//   - open loop (-mode open): request i is due at start + i/rate, whatever happened before it;
//     its latency runs from that intended time, so a server that stalls is charged for the
//     requests that queued behind the stall (no coordinated omission). At most -clients
//     connections are open; a due request waits for one, and the wait counts;
//   - closed loop (-mode closed): -clients clients, each sending its next request when the
//     previous answer has arrived; latency from the send.
//
// SIGINT ends the sending early (the requests under way are still awaited and recorded).
//
// It records every request (intended offset, latency, status, response id) and every distinct
// response body once per request body (the caller checks each distinct answer against the
// stored values and so checks every response), and prints a JSON summary with its own CPU.
//
// Files: <out>.req: per request, little-endian int64 intended offset ns (from the start),
// int64 latency ns, int32 status (HTTP status; 0 transport error; -1 timeout), int32 response
// id (-1: none); <out>.resp: per distinct response, uint32 body index, uint32 length, bytes.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type record struct {
	offset  int64
	latency int64
	status  int32
	resp    int32
}

type respKey struct {
	body int32
	text string
}

type loader struct {
	url     string
	bodies  [][]byte
	headers [][2]string
	client  *http.Client
	timeout time.Duration

	start    time.Time   // when sending began; offsets are from here
	stopped  atomic.Bool // SIGINT: send no more
	mu       sync.Mutex
	ids      map[respKey]int32
	distinct []respKey
	firstErr atomic.Value
}

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	url := flag.String("url", "", "URL to POST to")
	bodiesPath := flag.String("bodies", "", "file of request bodies, one per line")
	mode := flag.String("mode", "closed", "open or closed")
	rate := flag.Float64("rate", 0, "open loop: requests per second")
	clients := flag.Int("clients", 8, "closed loop: clients; open loop: most connections")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	timeout := flag.Duration("timeout", 10*time.Second, "per request, from its intended send time")
	offset := flag.Int("offset", 0, "index of the first body")
	out := flag.String("out", "", "prefix of the output files")
	var headers headerList
	flag.Var(&headers, "header", "'Name: value', repeatable")
	flag.Parse()
	if *url == "" || *bodiesPath == "" || *out == "" || *clients < 1 {
		fail("-url, -bodies, -out and -clients >= 1 are required")
	}
	if *mode == "open" && *rate <= 0 {
		fail("-mode open needs -rate > 0")
	}
	l := newLoader(*url, readBodies(*bodiesPath), parseHeaders(headers), *clients, *timeout)
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	go func() { <-interrupts; l.stopped.Store(true) }()
	began := time.Now()
	var records []record
	var lag time.Duration
	switch *mode {
	case "open":
		records, lag = l.open(*rate, *duration, *offset)
	case "closed":
		records = l.closed(*clients, *duration, *offset)
	default:
		fail("-mode: open or closed")
	}
	wall := time.Since(began)
	writeRecords(*out+".req", records)
	writeResponses(*out+".resp", l.distinct)
	summarize(*mode, *rate, *clients, *duration, wall, lag, records, l)
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "loadgen:", message)
	os.Exit(2)
}

func readBodies(path string) [][]byte {
	file, err := os.Open(path)
	if err != nil {
		fail(err.Error())
	}
	defer file.Close()
	var bodies [][]byte
	scanner := bufio.NewScanner(file)
	scanner.Buffer(make([]byte, 1<<20), 64<<20)
	for scanner.Scan() {
		if line := bytes.TrimSpace(scanner.Bytes()); len(line) > 0 {
			bodies = append(bodies, append([]byte(nil), line...))
		}
	}
	if err := scanner.Err(); err != nil || len(bodies) == 0 {
		fail(fmt.Sprintf("-bodies %s: no bodies (%v)", path, err))
	}
	return bodies
}

func parseHeaders(list []string) [][2]string {
	parsed := [][2]string{{"Content-Type", "application/json"}}
	for _, h := range list {
		name, value, ok := strings.Cut(h, ":")
		if !ok {
			fail("-header: expected 'Name: value', got " + h)
		}
		parsed = append(parsed, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
	}
	return parsed
}

func newLoader(url string, bodies [][]byte, headers [][2]string, conns int, timeout time.Duration) *loader {
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &loader{
		url: url, bodies: bodies, headers: headers, timeout: timeout,
		client: &http.Client{Transport: transport},
		ids:    map[respKey]int32{},
	}
}

// open sends request i at start + i/rate, each in its own goroutine; returns the records and
// the largest lateness of a send behind its intended time (the generator's own limit).
func (l *loader) open(rate float64, duration time.Duration, offset int) ([]record, time.Duration) {
	n := int(rate * duration.Seconds())
	records := make([]record, n)
	var wg sync.WaitGroup
	var lag time.Duration
	start := time.Now()
	l.start = start
	sent := 0
	for i := 0; i < n && !l.stopped.Load(); i++ {
		sent = i + 1
		intended := start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
		if wait := time.Until(intended); wait > 0 {
			time.Sleep(wait)
		} else if -wait > lag {
			lag = -wait
		}
		wg.Add(1)
		go func(i int, intended time.Time) {
			defer wg.Done()
			records[i] = l.send((offset+i)%len(l.bodies), intended, start)
		}(i, intended)
	}
	wg.Wait()
	return records[:sent], lag
}

// closed runs `clients` clients back to back until the duration has passed.
func (l *loader) closed(clients int, duration time.Duration, offset int) []record {
	var next int64 = int64(offset)
	start := time.Now()
	l.start = start
	deadline := start.Add(duration)
	per := make([][]record, clients)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for time.Now().Before(deadline) && !l.stopped.Load() {
				i := atomic.AddInt64(&next, 1) - 1
				per[c] = append(per[c], l.send(int(i%int64(len(l.bodies))), time.Now(), start))
			}
		}(c)
	}
	wg.Wait()
	var records []record
	for _, part := range per {
		records = append(records, part...)
	}
	return records
}

func (l *loader) send(body int, intended time.Time, start time.Time) record {
	rec := record{offset: int64(intended.Sub(start)), status: 0, resp: -1}
	ctx, cancel := context.WithDeadline(context.Background(), intended.Add(l.timeout))
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, http.MethodPost, l.url, bytes.NewReader(l.bodies[body]))
	if err != nil {
		fail(err.Error())
	}
	for _, h := range l.headers {
		request.Header.Set(h[0], h[1])
	}
	response, err := l.client.Do(request)
	var payload []byte
	if err == nil {
		payload, err = io.ReadAll(response.Body)
		response.Body.Close()
	}
	rec.latency = int64(time.Since(intended))
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			rec.status = -1
		}
		l.firstErr.CompareAndSwap(nil, err.Error())
		return rec
	}
	rec.status = int32(response.StatusCode)
	rec.resp = l.responseID(int32(body), payload)
	return rec
}

func (l *loader) responseID(body int32, payload []byte) int32 {
	key := respKey{body, string(payload)}
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.ids[key]
	if !ok {
		id = int32(len(l.distinct))
		l.ids[key] = id
		l.distinct = append(l.distinct, key)
	}
	return id
}

func writeRecords(path string, records []record) {
	file, err := os.Create(path)
	if err != nil {
		fail(err.Error())
	}
	writer := bufio.NewWriter(file)
	for _, r := range records {
		binary.Write(writer, binary.LittleEndian, r) //nolint:errcheck // checked by Flush
	}
	if err := writer.Flush(); err != nil {
		fail(err.Error())
	}
	file.Close()
}

func writeResponses(path string, distinct []respKey) {
	file, err := os.Create(path)
	if err != nil {
		fail(err.Error())
	}
	writer := bufio.NewWriter(file)
	for _, key := range distinct {
		binary.Write(writer, binary.LittleEndian, uint32(key.body))      //nolint:errcheck
		binary.Write(writer, binary.LittleEndian, uint32(len(key.text))) //nolint:errcheck
		writer.WriteString(key.text)                                     //nolint:errcheck
	}
	if err := writer.Flush(); err != nil {
		fail(err.Error())
	}
	file.Close()
}

func summarize(mode string, rate float64, clients int, duration, wall, lag time.Duration, records []record, l *loader) {
	var usage syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &usage) //nolint:errcheck
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	first, _ := l.firstErr.Load().(string)
	summary := map[string]any{
		"mode": mode, "rate": rate, "clients": clients, "duration_s": duration.Seconds(),
		"wall_s": wall.Seconds(), "requests": len(records), "distinct_responses": len(l.distinct),
		"max_send_lag_s": lag.Seconds(), "cpu_s": seconds(usage.Utime) + seconds(usage.Stime),
		"first_error": first, "start_unix_ns": l.start.UnixNano(),
	}
	encoded, _ := json.Marshal(summary)
	fmt.Println(string(encoded))
}
