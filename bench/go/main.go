// The benchmark server on the Go binding (mirror of bench/bench_server.c).
//
//	bench_server echo|broadcast PORT
//
// echo: every message goes back to its sender with the same type.
// broadcast: every message goes to every open connection, sender included.
// Listens on 127.0.0.1:PORT until killed. Like the C one: handlers on the one
// I/O thread, the event's bytes handed straight back to Send/Broadcast.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"

	wirehub "github.com/wirehub/wirehub/bindings/go"
)

func main() {
	if len(os.Args) != 3 || (os.Args[1] != "echo" && os.Args[1] != "broadcast") {
		fmt.Fprintln(os.Stderr, "usage: bench_server echo|broadcast PORT")
		os.Exit(2)
	}
	port, err := strconv.Atoi(os.Args[2])
	if err != nil || port < 0 || port > 65535 {
		fmt.Fprintf(os.Stderr, "bench_server: invalid port '%s'\n", os.Args[2])
		os.Exit(2)
	}
	raiseFdLimit()
	// wsbench pins the server to one core, so Go starts with one P. Between
	// events the engine's I/O thread sits in C holding that P (as in a
	// syscall); with no idle P left, sysmon keeps taking it back and the
	// next callback has to reacquire it. A second P (no extra core) stops
	// that churn: ~5% less CPU per echoed message here.
	if runtime.GOMAXPROCS(0) < 2 {
		runtime.GOMAXPROCS(2)
	}
	var srv *wirehub.Server
	cfg := &wirehub.ServerConfig{
		Backlog: 4096,
		OnError: func(err error) { fmt.Fprintln(os.Stderr, "bench:", err) },
	}
	if os.Args[1] == "broadcast" {
		cfg.OnMessage = func(c *wirehub.Conn, typ wirehub.MessageType, data []byte) {
			if _, err := srv.Broadcast(typ, data, nil); err != nil && !errors.Is(err, wirehub.ErrShutdown) {
				fmt.Fprintln(os.Stderr, "bench:", err)
			}
		}
	} else {
		cfg.OnMessage = func(c *wirehub.Conn, typ wirehub.MessageType, data []byte) {
			// A dropped echo would fake the figures: end that connection.
			if _, err := c.Send(typ, data); err != nil && !errors.Is(err, wirehub.ErrClosed) {
				fmt.Fprintln(os.Stderr, "bench:", err)
				_ = c.Terminate()
			}
		}
	}
	srv, err = wirehub.Listen(fmt.Sprintf("127.0.0.1:%d", port), cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench_server:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on ws://127.0.0.1:%d (%s)\n", srv.Port(), os.Args[1])
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	_ = srv.Close()
}

// connect-5k holds 5000 sockets; a soft limit of 1024 would measure the limit.
// (Go 1.19+ already raises it at startup; this keeps older toolchains right.)
func raiseFdLimit() {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}
