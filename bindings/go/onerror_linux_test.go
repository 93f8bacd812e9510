package wirehub

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The engine reports an accept that fails (here: the process is out of file
// descriptors) to ServerConfig.OnError, and keeps serving: the connection
// waiting in the backlog is accepted once descriptors are free again.
func TestServerOnErrorReportsAFailedAcceptAndServingGoesOn(t *testing.T) {
	errs := make(chan error, 16)
	opened := make(chan struct{}, 1)
	s, err := Listen("127.0.0.1:0", &ServerConfig{
		OnOpen: func(c *Conn) { opened <- struct{}{} },
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// The client's socket first: it must exist before descriptors run out.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)

	// Run out of descriptors: a low soft limit, filled with /dev/null.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skip("getrlimit:", err)
	}
	open, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("/proc/self/fd:", err)
	}
	low := lim
	low.Cur = uint64(len(open)) + 32
	if low.Cur >= lim.Cur {
		t.Skip("the descriptor limit is already low")
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Skip("setrlimit:", err)
	}
	var fillers []*os.File
	restore := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			t.Error("restoring RLIMIT_NOFILE:", err)
		}
	}
	defer restore()
	for i := 0; ; i++ {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatal(err)
			}
			break
		}
		if i > 1000 {
			t.Fatal("the lowered limit did not hold")
		}
		fillers = append(fillers, f)
	}

	// The kernel completes the TCP handshake; the server's accept fails.
	sa := &syscall.SockaddrInet4{Port: s.Port(), Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Connect(fd, sa); err != nil {
		t.Fatal("connect:", err)
	}
	select {
	case err := <-errs:
		var oe *OpError
		if !errors.As(err, &oe) || !errors.Is(err, ErrIO) || !strings.Contains(err.Error(), "accept failed") {
			t.Error(err)
		}
	case <-time.After(wait):
		t.Fatal("OnError not called")
	}
	restore()

	// Served again: a WebSocket handshake on that socket now opens.
	req := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	if _, err := syscall.Write(fd, []byte(req)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-opened:
	case <-time.After(wait):
		t.Fatal("the connection left in the backlog was never served")
	}
}
