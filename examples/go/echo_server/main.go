// Echo server: every message goes back to its sender with the same type.
//
//	go run ./echo_server [-host 127.0.0.1] [-port 8080]
//
// Prints "listening on ws://HOST:PORT" once ready (port 0 picks a free one)
// and serves until SIGINT/SIGTERM, then closes every connection with 1001.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	wirehub "github.com/wirehub/wirehub/bindings/go"
)

func main() {
	host := flag.String("host", "127.0.0.1", "address to listen on")
	port := flag.Int("port", 8080, "port to listen on (0: any free port)")
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	srv, err := wirehub.Listen(net.JoinHostPort(*host, strconv.Itoa(*port)), &wirehub.ServerConfig{
		// Runs on the I/O thread; data is only valid during the call, and
		// Send copies it into the outgoing frame.
		OnMessage: func(c *wirehub.Conn, typ wirehub.MessageType, data []byte) {
			if _, err := c.Send(typ, data); err != nil && !errors.Is(err, wirehub.ErrClosed) {
				fmt.Fprintln(os.Stderr, "echo_server:", err)
			}
		},
		OnError: func(err error) { fmt.Fprintln(os.Stderr, "echo_server:", err) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "echo_server:", err)
		os.Exit(1)
	}
	fmt.Printf("listening on ws://%s\n", net.JoinHostPort(*host, strconv.Itoa(srv.Port())))
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	if err := srv.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "echo_server:", err)
		os.Exit(1)
	}
}
