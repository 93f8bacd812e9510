// Chat client, scriptable through stdin/stdout:
//
//	go run ./chat_client ws://127.0.0.1:8080/
//
// Each stdin line is sent as a text message (without its line end); each
// message received is printed as one line (binary ones as "<binary N bytes>").
// At the end of stdin it closes with 1000 and waits for the server's close;
// when the server closes, it exits.
//
// Exit status: 0 after a clean close, 1 if the connection failed or ended
// abnormally, 2 on bad usage.
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	wirehub "github.com/wirehub/wirehub/bindings/go"
)

const closeWait = 10 * time.Second

func main() {
	if len(os.Args) != 2 || strings.HasPrefix(os.Args[1], "-") {
		fmt.Fprintln(os.Stderr, "usage: chat_client ws://HOST:PORT/PATH")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	conn, err := wirehub.Dial(ctx, os.Args[1], nil)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat_client:", err)
		os.Exit(1)
	}

	stdinDone := make(chan struct{})
	go func() {
		defer close(stdinDone)
		in := bufio.NewReader(os.Stdin)
		for {
			line, err := in.ReadString('\n')
			if len(line) > 0 {
				line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
				// Write waits while the send buffer is over its high-water mark.
				if werr := conn.Write(context.Background(), wirehub.Text, []byte(line)); werr != nil {
					if errors.Is(werr, wirehub.ErrClosed) {
						return
					}
					fmt.Fprintln(os.Stderr, "chat_client:", werr)
				}
			}
			if err != nil {
				break
			}
		}
		_ = conn.Close()
	}()

	// Messages are read on the main goroutine so that output keeps order.
	out := bufio.NewWriter(os.Stdout)
	go func() {
		<-stdinDone
		// The close handshake has its own timeout in the engine; this is a
		// last resort so the process never hangs.
		time.Sleep(closeWait)
		_ = conn.Terminate()
	}()
	for {
		typ, data, err := conn.Read(context.Background())
		if err != nil {
			out.Flush()
			var ce *wirehub.CloseError
			if errors.As(err, &ce) && ce.Err == nil {
				os.Exit(0)
			}
			fmt.Fprintln(os.Stderr, "chat_client: connection ended:", err)
			os.Exit(1)
		}
		if typ == wirehub.Text {
			out.Write(data)
			out.WriteByte('\n')
		} else {
			fmt.Fprintf(out, "<binary %d bytes>\n", len(data))
		}
		out.Flush()
	}
}
