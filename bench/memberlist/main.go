// Command memberlist-agent runs one HashiCorp memberlist member (its default LAN configuration) behind the
// command line, event log, HTTP answers and counters of a `roster agent`, so that `roster bench cluster
// --agent-program` measures both with one workload: the same start, the same convergence check, the same quiet
// window read from /proc and /metrics, the same crash timed from the event logs.
//
// It speaks only what the benchmark reads:
//
//   - flags: `agent --name N --bind IP:PORT --http IP:PORT --data-dir DIR [--log-level L] [--join IP:PORT]...`
//   - DIR/events.jsonl: one line per change to the list, `{"time":"...Z","node":N,"event":"join"|"update"|
//     "failed"|"leave","member":M}` (memberlist does not report suspicions to its delegate)
//   - GET /v1/self: this member, with `active_members` (memberlist's NumMembers: alive and suspect)
//   - GET /metrics: datagrams and stream writes sent, and their payload bytes, counted in the transport, and the
//     suspicions memberlist handled, from its own metrics
//
// SIGINT or SIGTERM leaves gracefully; the benchmark kills with SIGKILL.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/memberlist"
)

type joins []string

func (j *joins) String() string     { return strings.Join(*j, ",") }
func (j *joins) Set(v string) error { *j = append(*j, v); return nil }

type options struct {
	name, bind, http, dataDir, logLevel string
	join                                joins
}

func parse(args []string) (options, error) {
	var o options
	if len(args) == 0 || args[0] != "agent" {
		return o, errors.New("usage: memberlist-agent agent --name N --bind IP:PORT --http IP:PORT --data-dir DIR [--join IP:PORT]...")
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.StringVar(&o.name, "name", "", "member name")
	fs.StringVar(&o.bind, "bind", "", "UDP and TCP address")
	fs.StringVar(&o.http, "http", "", "HTTP address")
	fs.StringVar(&o.dataDir, "data-dir", "", "where events.jsonl is written")
	fs.StringVar(&o.logLevel, "log-level", "warn", "memberlist's own log lines are kept at debug and info")
	fs.Var(&o.join, "join", "a member to join through (repeatable)")
	if err := fs.Parse(args[1:]); err != nil {
		return o, err
	}
	if o.name == "" || o.bind == "" || o.http == "" || o.dataDir == "" {
		return o, errors.New("--name, --bind, --http and --data-dir are required")
	}
	return o, nil
}

// counters are what /metrics reports, counted where the bytes leave.
type counters struct {
	udpPackets, udpBytes, tcpPackets, tcpBytes atomic.Uint64
}

// countingTransport is memberlist's own NetTransport, counting what it sends.
type countingTransport struct {
	*memberlist.NetTransport
	sent   *counters
	stream chan net.Conn
}

// memberlist sends through the address-aware calls; the plain ones route to them.
func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	return t.WriteToAddress(b, memberlist.Address{Addr: addr})
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	at, err := t.NetTransport.WriteToAddress(b, a)
	if err == nil {
		t.sent.udpPackets.Add(1)
		t.sent.udpBytes.Add(uint64(len(b)))
	}
	return at, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	return t.DialAddressTimeout(memberlist.Address{Addr: addr}, timeout)
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	conn, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, sent: t.sent}, nil
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.stream }

// countingConn counts each write on a stream as one frame, as a roster agent counts its stream frames.
type countingConn struct {
	net.Conn
	sent *counters
}

func (c *countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.sent.tcpPackets.Add(1)
		c.sent.tcpBytes.Add(uint64(n))
	}
	return n, err
}

// eventLog writes the lines the benchmark replays.
type eventLog struct {
	mu   sync.Mutex
	file *os.File
	node string
}

func (l *eventLog) write(event string, member *memberlist.Node) {
	line, _ := json.Marshal(map[string]string{
		"time":   time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		"node":   l.node,
		"event":  event,
		"member": member.Name,
		"addr":   member.Address(),
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.file.Write(append(line, '\n'))
}

func (l *eventLog) NotifyJoin(n *memberlist.Node)   { l.write("join", n) }
func (l *eventLog) NotifyUpdate(n *memberlist.Node) { l.write("update", n) }
func (l *eventLog) NotifyLeave(n *memberlist.Node) {
	if n.State == memberlist.StateLeft {
		l.write("leave", n)
	} else {
		l.write("failed", n)
	}
}

func main() {
	opts, err := parse(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "memberlist-agent:", err)
		os.Exit(2)
	}
	if err := run(opts); err != nil {
		fmt.Fprintln(os.Stderr, "memberlist-agent:", err)
		os.Exit(1)
	}
}

func run(opts options) error {
	host, portText, err := net.SplitHostPort(opts.bind)
	if err != nil {
		return fmt.Errorf("--bind %q: %v", opts.bind, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("--bind %q: %v", opts.bind, err)
	}
	if err := os.MkdirAll(opts.dataDir, 0o755); err != nil {
		return err
	}
	file, err := os.OpenFile(filepath.Join(opts.dataDir, "events.jsonl"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	events := &eventLog{file: file, node: opts.name}

	// memberlist counts its suspicions in go-metrics; an in-memory sink keeps them for /metrics.
	sink := metrics.NewInmemSink(time.Hour, time.Hour)
	metricsConfig := metrics.DefaultConfig("agent")
	metricsConfig.EnableHostname = false
	metricsConfig.EnableRuntimeMetrics = false
	metricsConfig.EnableServiceLabel = false
	metricsConfig.EnableTypePrefix = false
	if _, err := metrics.NewGlobal(metricsConfig, sink); err != nil {
		return err
	}

	logOutput := io.Discard
	if opts.logLevel == "debug" || opts.logLevel == "info" {
		logOutput = os.Stderr
	}
	logger := log.New(logOutput, "", log.LstdFlags)
	inner, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{host},
		BindPort:  port,
		Logger:    logger,
	})
	if err != nil {
		return fmt.Errorf("cannot bind %s: %v", opts.bind, err)
	}
	sent := &counters{}
	transport := &countingTransport{NetTransport: inner, sent: sent, stream: make(chan net.Conn)}
	go func() {
		for conn := range inner.StreamCh() {
			transport.stream <- &countingConn{Conn: conn, sent: sent}
		}
	}()

	config := memberlist.DefaultLANConfig()
	config.Name = opts.name
	config.BindAddr = host
	config.BindPort = port
	config.AdvertiseAddr = host
	config.AdvertisePort = port
	config.Transport = transport
	config.Events = events
	config.Logger = logger
	list, err := memberlist.Create(config)
	if err != nil {
		return err
	}
	if len(opts.join) > 0 {
		if _, err := list.Join(opts.join); err != nil {
			return fmt.Errorf("join failed: %v", err)
		}
	}

	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/self", func(w http.ResponseWriter, r *http.Request) {
		local := list.LocalNode()
		joined := started.UnixMilli()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]interface{}{
			"name":             local.Name,
			"addr":             local.Address(),
			"state":            "alive",
			"incarnation":      0,
			"joined_at":        started.UTC().Format("2006-01-02T15:04:05.000Z"),
			"joined_at_ms":     joined,
			"meta":             map[string]string{},
			"rtt_ms":           nil,
			"health_score":     list.GetHealthScore(),
			"active_members":   list.NumMembers(),
			"version":          "memberlist",
			"protocol_version": config.ProtocolVersion,
			"token_file":       nil,
		})
	})
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "roster_sent_packets_total{transport=\"udp\"} %d\n", sent.udpPackets.Load())
		fmt.Fprintf(w, "roster_sent_packets_total{transport=\"tcp\"} %d\n", sent.tcpPackets.Load())
		fmt.Fprintf(w, "roster_sent_bytes_total{transport=\"udp\"} %d\n", sent.udpBytes.Load())
		fmt.Fprintf(w, "roster_sent_bytes_total{transport=\"tcp\"} %d\n", sent.tcpBytes.Load())
		fmt.Fprintf(w, "roster_suspicions_total %d\n", suspicions(sink))
	})
	listener, err := net.Listen("tcp", opts.http)
	if err != nil {
		return fmt.Errorf("cannot serve HTTP on %s: %v", opts.http, err)
	}
	go http.Serve(listener, mux)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	<-signals
	list.Leave(5 * time.Second)
	return list.Shutdown()
}

// suspicions sums memberlist's `memberlist.msg.suspect` counter over the sink's intervals.
func suspicions(sink *metrics.InmemSink) uint64 {
	var total uint64
	for _, interval := range sink.Data() {
		interval.RLock()
		for name, counter := range interval.Counters {
			if strings.HasSuffix(name, "memberlist.msg.suspect") {
				total += uint64(counter.Count)
			}
		}
		interval.RUnlock()
	}
	return total
}
