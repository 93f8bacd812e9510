#!/usr/bin/env python3
"""End-to-end tests of the C examples, run through their command lines.

  test_examples.py --echo-server BIN --chat-server BIN --client BIN CASE...

CASE is echo, chat or client_errors (ctest runs each as its own test). Every
wait is bounded, every process is killed on the way out, and only loopback
is used. Python 3 standard library only.
"""
import argparse
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

LINE_TIMEOUT = 10.0  # seconds to wait for any one expected line
EXIT_TIMEOUT = 15.0  # seconds for a process to exit once told to


class Failure(Exception):
    pass


class Proc:
    """A child process whose stdout/stderr lines are collected by threads, so
    reads never block the test beyond their own timeout."""

    def __init__(self, name, argv, stdin=True):
        self.name = name
        self.argv = argv
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.lines = queue.Queue()
        self.err = []
        self.pumps = [threading.Thread(target=self._pump, args=(self.p.stdout, self.lines.put), daemon=True),
                      threading.Thread(target=self._pump, args=(self.p.stderr, self.err.append), daemon=True)]
        for t in self.pumps:
            t.start()

    @staticmethod
    def _pump(stream, put):
        for raw in iter(stream.readline, b""):
            put(raw.decode("utf-8", "replace").rstrip("\n"))
        put(None)  # end of stream

    def stderr(self):
        return "\n".join(l for l in self.err if l is not None)

    def fail(self, msg):
        raise Failure("%s: %s\n--- %s stderr ---\n%s" % (self.name, msg, self.name, self.stderr()))

    def send(self, line):
        try:
            self.p.stdin.write((line + "\n").encode())
            self.p.stdin.flush()
        except BrokenPipeError:
            self.fail("stdin closed while sending %r (exit %s)" % (line, self.p.poll()))

    def close_stdin(self):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass

    def next_line(self, timeout=LINE_TIMEOUT):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.fail("no output line within %.0f s" % timeout)
        if line is None:
            self.lines.put(None)  # keep reporting the end
            self.fail("output ended (exit %s)" % self.p.poll())
        return line

    def expect(self, want, timeout=LINE_TIMEOUT):
        got = self.next_line(timeout)
        if got != want:
            self.fail("expected %r, got %r" % (want, got))

    def expect_match(self, pattern, timeout=LINE_TIMEOUT):
        got = self.next_line(timeout)
        m = re.fullmatch(pattern, got)
        if not m:
            self.fail("expected a line matching %r, got %r" % (pattern, got))
        return m

    def remaining_lines(self):
        """Every line left, once stdout has ended (call after wait())."""
        out = []
        while True:
            try:
                line = self.lines.get(timeout=LINE_TIMEOUT)
            except queue.Empty:
                self.fail("stdout did not end")
            if line is None:
                return out
            out.append(line)

    def wait(self, timeout=EXIT_TIMEOUT):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.fail("did not exit within %.0f s" % timeout)
        # Its last words may still be in the pipes: stderr() must see them.
        for t in self.pumps:
            t.join(timeout=LINE_TIMEOUT)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Run:
    def __init__(self, bins):
        self.bins = bins
        self.procs = []

    def start(self, name, argv, stdin=True):
        p = Proc(name, argv, stdin)
        self.procs.append(p)
        return p

    def server(self, kind):
        """Start a server on a port the kernel picks; return (proc, url)."""
        p = self.start(kind, [self.bins[kind], "--host", "127.0.0.1", "--port", "0"], stdin=False)
        m = p.expect_match(r"listening on ws://127\.0\.0\.1:(\d+)")
        port = int(m.group(1))
        if not 0 < port < 65536:
            p.fail("bad port %d" % port)
        return p, "ws://127.0.0.1:%d/" % port

    def client(self, name, url):
        return self.start(name, [self.bins["client"], url])

    def cleanup(self):
        for p in self.procs:
            p.kill()


def stop_server(server, sig):
    server.p.send_signal(sig)
    rc = server.wait()
    if rc != 0:
        server.fail("exit status %s after %s, want 0" % (rc, signal.Signals(sig).name))


def check_client_exit(c, want=0):
    rc = c.wait()
    if rc != want:
        c.fail("exit status %s, want %s" % (rc, want))


# ---------------------------------------------------------------------- echo
def case_echo(run):
    server, url = run.server("echo-server")

    # Lines, an empty one, non-ASCII text, and a last line with no newline:
    # all echoed in order, then a clean close when stdin ends.
    c = run.client("client", url)
    lines = ["hello", "w\u00f6rld \u2713", "", "x" * 100000]
    c.p.stdin.write(("\n".join(lines) + "\nno newline at the end").encode())
    c.close_stdin()
    check_client_exit(c)
    got = c.remaining_lines()
    want = lines + ["no newline at the end"]
    if got != want:
        c.fail("echoed %r, want %r" % ([g[:40] for g in got], [w[:40] for w in want]))

    # Many messages at once: none lost, none reordered.
    c = run.client("client-burst", url)
    burst = ["message %d" % i for i in range(2000)]
    c.p.stdin.write(("\n".join(burst) + "\n").encode())
    c.close_stdin()
    check_client_exit(c)
    got = c.remaining_lines()
    if got != burst:
        c.fail("burst: got %d lines, first difference at %s" % (
            len(got), next((i for i, (a, b) in enumerate(zip(got, burst)) if a != b), min(len(got), len(burst)))))

    # Interactive: each line comes back before the next is sent.
    c = run.client("client-interactive", url)
    for i in range(5):
        c.send("ping %d" % i)
        c.expect("ping %d" % i)
    c.close_stdin()
    check_client_exit(c)

    stop_server(server, signal.SIGINT)


# ---------------------------------------------------------------------- chat
def case_chat(run):
    server, url = run.server("chat-server")

    a = run.client("client-a", url)
    ga = a.expect_match(r"\* (guest-\d+) joined lobby").group(1)
    a.send("/nick alice")
    a.expect("* %s is now alice" % ga)

    b = run.client("client-b", url)
    gb = b.expect_match(r"\* (guest-\d+) joined lobby").group(1)
    if gb == ga:
        b.fail("two clients got the same nickname %s" % ga)
    a.expect("* %s joined lobby" % gb)
    b.send("/nick bob")
    b.expect("* %s is now bob" % gb)
    a.expect("* %s is now bob" % gb)

    # Same room: everyone, sender included, sees "nick: text".
    a.send("hello")
    a.expect("alice: hello")
    b.expect("alice: hello")
    b.send("hi alice \u263a")
    b.expect("bob: hi alice \u263a")
    a.expect("bob: hi alice \u263a")

    # bob moves: lobby hears him leave, dev hears him arrive.
    b.send("/join dev")
    b.expect("* bob joined dev")
    a.expect("* bob left lobby")

    # Different rooms: nothing crosses. a's message reaches a before bob
    # speaks, so if it leaked to b it would come before bob's own line.
    a.send("still in the lobby")
    a.expect("alice: still in the lobby")
    b.send("alone in dev")
    b.expect("bob: alone in dev")

    # Errors go to the sender only.
    b.send("/join two words")
    b.expect_match(r"! a room name is .*")
    b.send("/dance")
    b.expect_match(r"! unknown command.*")

    # alice follows; both rooms see it, then they talk again.
    a.send("/join dev")
    a.expect("* alice joined dev")
    b.expect("* alice joined dev")
    a.send("together")
    a.expect("alice: together")
    b.expect("alice: together")

    # A client that leaves is announced to its room.
    a.close_stdin()
    check_client_exit(a)
    b.expect("* alice left dev")

    # Shutdown: the server closes b with 1001, which b takes as a normal end.
    stop_server(server, signal.SIGTERM)
    check_client_exit(b, 0)
    if "1001" not in b.stderr():
        b.fail("expected the server's 1001 close to be reported")


# ------------------------------------------------------------- client errors
def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_404_server():
    """A plain HTTP server that refuses every request with 404, once."""
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(LINE_TIMEOUT)

    def serve():
        try:
            conn, _ = ls.accept()
            with conn:
                conn.settimeout(LINE_TIMEOUT)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        finally:
            ls.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def case_client_errors(run):
    c = run.client("client-refused", "ws://127.0.0.1:%d/" % free_port())
    c.close_stdin()
    check_client_exit(c, 1)
    if "connection refused" not in c.stderr():
        c.fail("expected wh_strerror(WH_ECONNREFUSED) on stderr")

    c = run.client("client-bad-url", "http://127.0.0.1:1/")
    c.close_stdin()
    check_client_exit(c, 2)
    if "invalid URL" not in c.stderr():
        c.fail("expected wh_strerror(WH_EURL) on stderr")

    c = run.client("client-404", "ws://127.0.0.1:%d/" % http_404_server())
    c.close_stdin()
    check_client_exit(c, 1)
    if "404" not in c.stderr():
        c.fail("expected the HTTP status on stderr")

    # stdin ending before the handshake completes still ends in a clean close.
    server, url = run.server("echo-server")
    c = run.client("client-empty", url)
    c.close_stdin()
    check_client_exit(c, 0)
    if c.remaining_lines():
        c.fail("printed output without receiving anything")
    stop_server(server, signal.SIGTERM)


CASES = {"echo": case_echo, "chat": case_chat, "client_errors": case_client_errors}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--echo-server", required=True)
    ap.add_argument("--chat-server", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("cases", nargs="+", choices=sorted(CASES))
    a = ap.parse_args()
    bins = {"echo-server": a.echo_server, "chat-server": a.chat_server, "client": a.client}
    for name, path in bins.items():
        if not os.access(path, os.X_OK):
            sys.exit("%s: %s is not an executable" % (name, path))
    passed = failed = 0
    for name in a.cases:
        run = Run(bins)
        t0 = time.monotonic()
        try:
            CASES[name](run)
            passed += 1
            print("ok %s (%.1f s)" % (name, time.monotonic() - t0))
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, e))
        finally:
            run.cleanup()
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
