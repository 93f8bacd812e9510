package wirehub

/*
#include "wirehub_go.h"
*/
import "C"

import "fmt"

// Errno is a C ABI error code (a negative WH_E* value).
type Errno int

// The C ABI's codes. Every error this package returns wraps one of these
// (or a context error), so errors.Is(err, wirehub.ErrClosed) works.
const (
	ErrInvalid      Errno = -1
	ErrNoMemory     Errno = -2
	ErrClosed       Errno = -3
	ErrDropped      Errno = -4
	ErrState        Errno = -5
	ErrAddrInUse    Errno = -6
	ErrResolve      Errno = -7
	ErrConnRefused  Errno = -8
	ErrTimedOut     Errno = -9
	ErrHandshake    Errno = -10
	ErrTLS          Errno = -11
	ErrIO           Errno = -12
	ErrProtocol     Errno = -13
	ErrUTF8         Errno = -14
	ErrTooBig       Errno = -15
	ErrLimit        Errno = -16
	ErrURL          Errno = -17
	ErrNotSupported Errno = -18
	ErrAgain        Errno = -19
	ErrShutdown     Errno = -20
	ErrCloseCode    Errno = -21
	ErrPingTimeout  Errno = -22
	ErrStatus       Errno = -23
	ErrAddr         Errno = -24
	ErrAccess       Errno = -25
	ErrReset        Errno = -26
	ErrInternal     Errno = -27
	ErrIdle         Errno = -28 // nothing arrived from the peer within the idle timeout
	ErrBudget       Errno = -29 // the server's memory budget (MaxMemory) was exceeded
	ErrTooManyFiles Errno = -30 // the process is out of file descriptors (EMFILE, ENFILE)
	ErrBroker       Errno = -31 // the broker (Redis) failed in a way no other code names
)

// RFC 6455 close codes, the C header's WH_CLOSE_*: for CloseWith and
// CloseError.Code. CloseNoStatus and CloseAbnormal are only ever reported,
// never sent.
const (
	CloseNormal             = C.WH_CLOSE_NORMAL              // purpose fulfilled
	CloseGoingAway          = C.WH_CLOSE_GOING_AWAY          // server shutting down, idle timeout
	CloseProtocolError      = C.WH_CLOSE_PROTOCOL_ERROR      // a frame broke RFC 6455
	CloseUnsupportedData    = C.WH_CLOSE_UNSUPPORTED_DATA    // a type of data the endpoint cannot take
	CloseNoStatus           = C.WH_CLOSE_NO_STATUS           // the close frame had no code
	CloseAbnormal           = C.WH_CLOSE_ABNORMAL            // no close frame at all
	CloseInvalidData        = C.WH_CLOSE_INVALID_DATA        // invalid UTF-8, corrupt compressed data
	ClosePolicy             = C.WH_CLOSE_POLICY              // a limit other than size (too slow, not reading, budget)
	CloseTooBig             = C.WH_CLOSE_TOO_BIG             // a message above the maximum size
	CloseMandatoryExtension = C.WH_CLOSE_MANDATORY_EXTENSION // client: an extension the server did not accept
	CloseInternalError      = C.WH_CLOSE_INTERNAL_ERROR      // the endpoint failed
	CloseServiceRestart     = C.WH_CLOSE_SERVICE_RESTART
	CloseTryAgainLater      = C.WH_CLOSE_TRY_AGAIN_LATER
	CloseBadGateway         = C.WH_CLOSE_BAD_GATEWAY
)

// Error returns the library's description (wh_strerror).
func (e Errno) Error() string { return C.GoString(C.wh_strerror(C.int(e))) }

// Name returns the code's name, e.g. "WH_ECLOSED".
func (e Errno) Name() string { return C.GoString(C.wh_err_name(C.int(e))) }

// OpError is what a failed operation returns: the operation, the C ABI code,
// and for a handshake refused by the server, the HTTP status.
type OpError struct {
	Op     string // "dial ws://...", "listen 127.0.0.1:0", "send", ...
	Code   Errno
	Status int // HTTP status when Code == ErrStatus
}

func (e *OpError) Error() string {
	if e.Code == ErrStatus && e.Status != 0 {
		return fmt.Sprintf("wirehub: %s: handshake refused with HTTP %d (%s)", e.Op, e.Status, e.Code.Name())
	}
	return fmt.Sprintf("wirehub: %s: %s (%s)", e.Op, e.Code.Error(), e.Code.Name())
}

func (e *OpError) Unwrap() error { return e.Code }

func opErr(op string, rc C.int) error {
	if rc >= 0 {
		return nil
	}
	return &OpError{Op: op, Code: Errno(rc)}
}

// CloseError says how a connection ended: what Read and Wait return once it
// is closed. Err is nil after a clean close handshake.
type CloseError struct {
	Code   int    // 1000..4999; 1005 no code sent; 1006 no close frame exchanged
	Reason string // the close reason
	Err    error  // nil if the close handshake completed, else an Errno
}

func (e *CloseError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("wirehub: connection closed (%d %q): %v", e.Code, e.Reason, e.Err)
	}
	return fmt.Sprintf("wirehub: connection closed (%d %q)", e.Code, e.Reason)
}

// Unwrap gives ErrClosed after a clean close, else why it was not clean;
// errors.Is(err, wirehub.ErrClosed) holds for every clean close.
func (e *CloseError) Unwrap() error {
	if e.Err != nil {
		return e.Err
	}
	return ErrClosed
}
