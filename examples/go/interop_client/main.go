// The Go client of tests/interop (see tests/interop/README.md):
//
//	interop_client URL NAME COMPRESS
//
// Connects (offering permessage-deflate if COMPRESS is 1), prints
// "EXTENSIONS <ext or ->" and "READY", waits for "GO <total>" on stdin, sends
// its five messages (printing "SENT <T|B> <length> <sha256>" for each),
// prints "RECV ..." for each message received, closes with 1000 once it has
// received <total>, and prints "DONE" after a clean close.
//
// The OnMessage handler runs on the engine's I/O thread and must not block:
// it neither waits for main nor writes to stdout itself (a slow reader of
// the pipe would stall it); its lines join one queue that a goroutine prints,
// in order.
package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	wirehub "github.com/wirehub/wirehub/bindings/go"
)

const mib = 1 << 20

// The output queue: emit never blocks on stdout, the printer goroutine
// writes the lines in the order they were emitted.
var out struct {
	mu      sync.Mutex
	lines   []string
	wake    chan struct{} // one slot: lines are waiting
	flushed chan struct{} // closed by flush: print what is left, then stop
	printed chan struct{} // closed by the printer once it has stopped
}

func emit(format string, args ...interface{}) {
	out.mu.Lock()
	out.lines = append(out.lines, fmt.Sprintf(format, args...))
	out.mu.Unlock()
	select {
	case out.wake <- struct{}{}:
	default:
	}
}

func printer() {
	w := bufio.NewWriter(os.Stdout)
	for {
		select {
		case <-out.wake:
		case <-out.flushed:
		}
		out.mu.Lock()
		lines := out.lines
		out.lines = nil
		out.mu.Unlock()
		for _, l := range lines {
			w.WriteString(l)
			w.WriteByte('\n')
		}
		w.Flush()
		if len(lines) == 0 {
			select {
			case <-out.flushed:
				close(out.printed)
				return
			default:
			}
		}
	}
}

// flush prints what is queued and stops the printer (before exiting).
func flush() {
	close(out.flushed)
	<-out.printed
}

func digest(what string, typ wirehub.MessageType, data []byte) {
	sum := sha256.Sum256(data)
	t := "B"
	if typ == wirehub.Text {
		t = "T"
	}
	emit("%s %s %d %s", what, t, len(data), hex.EncodeToString(sum[:]))
}

func fail(format string, args ...interface{}) {
	flush()
	fmt.Fprintf(os.Stderr, "go_client: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: interop_client URL NAME COMPRESS")
		os.Exit(2)
	}
	url, name := os.Args[1], os.Args[2]
	out.wake = make(chan struct{}, 1)
	out.flushed = make(chan struct{})
	out.printed = make(chan struct{})
	go printer()

	var mu sync.Mutex
	received, total := 0, -1
	// Closes once every message of the room has arrived; the handler passes
	// its own connection, so it needs nothing from main (Dial may not have
	// returned yet when the first message arrives).
	maybeFinish := func(c *wirehub.Conn) { // mu held
		if total >= 0 && received == total {
			_ = c.CloseWith(1000, "done")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := wirehub.Dial(ctx, url, &wirehub.DialOptions{
		Deflate:     os.Args[3] == "1",
		MaxBuffered: 64 * mib,
		OnMessage: func(c *wirehub.Conn, typ wirehub.MessageType, data []byte) {
			digest("RECV", typ, data)
			mu.Lock()
			received++
			maybeFinish(c)
			mu.Unlock()
		},
	})
	if err != nil {
		fail("connect: %v", err)
	}
	ext := conn.Extensions()
	if ext == "" {
		ext = "-"
	}
	emit("EXTENSIONS %s", ext)
	emit("READY")

	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	var goTotal int
	if _, serr := fmt.Sscanf(strings.TrimSpace(line), "GO %d", &goTotal); serr != nil || goTotal < 0 {
		fail("expected GO <total>, got %q (%v)", line, err)
	}
	mu.Lock()
	total = goTotal
	maybeFinish(conn)
	mu.Unlock()

	send := func(typ wirehub.MessageType, data []byte) {
		if _, err := conn.Send(typ, data); err != nil {
			fail("send: %v", err)
		}
		digest("SENT", typ, data)
	}
	prefix := func(i int) []byte { return []byte(fmt.Sprintf("%s|%d|", name, i)) }

	send(wirehub.Text, []byte(fmt.Sprintf("%s|1|hello from %s ✓", name, name)))
	b := prefix(2)
	for i := 0; i < 64; i++ {
		b = append(b, byte(i))
	}
	send(wirehub.Binary, b)
	t := prefix(3)
	for i := 0; len(t) < mib; i++ {
		t = append(t, "abcdefghijklmnopqrstuvwxyz"[i%26])
	}
	send(wirehub.Text, t)
	bin := prefix(4)
	for i := 0; len(bin) < mib; i++ {
		bin = append(bin, byte((i*31+7)&255))
	}
	send(wirehub.Binary, bin)
	f1, f2, f3 := prefix(5), []byte("part two, "), []byte("part three ✓")
	for i, f := range [][]byte{f1, f2, f3} {
		if _, err := conn.SendFragment(wirehub.Text, f, i == 2); err != nil {
			fail("send: %v", err)
		}
	}
	digest("SENT", wirehub.Text, append(append(append([]byte{}, f1...), f2...), f3...))

	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	werr := conn.Wait(wctx)
	var ce *wirehub.CloseError
	mu.Lock()
	got, ok := received, received == total
	mu.Unlock()
	if ce2, isClose := werr.(*wirehub.CloseError); isClose {
		ce = ce2
	}
	if ce == nil || ce.Err != nil || !ok {
		fail("closed: %v (received %d of %d)", werr, got, goTotal)
	}
	emit("DONE")
	flush()
}
