package wirehub

import (
	"errors"
	"testing"
)

// The close codes are the header's WH_CLOSE_* (they are defined from it),
// and those are RFC 6455's numbers.
func TestCloseCodesAreRFC6455s(t *testing.T) {
	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"CloseNormal", CloseNormal, 1000},
		{"CloseGoingAway", CloseGoingAway, 1001},
		{"CloseProtocolError", CloseProtocolError, 1002},
		{"CloseUnsupportedData", CloseUnsupportedData, 1003},
		{"CloseNoStatus", CloseNoStatus, 1005},
		{"CloseAbnormal", CloseAbnormal, 1006},
		{"CloseInvalidData", CloseInvalidData, 1007},
		{"ClosePolicy", ClosePolicy, 1008},
		{"CloseTooBig", CloseTooBig, 1009},
		{"CloseMandatoryExtension", CloseMandatoryExtension, 1010},
		{"CloseInternalError", CloseInternalError, 1011},
		{"CloseServiceRestart", CloseServiceRestart, 1012},
		{"CloseTryAgainLater", CloseTryAgainLater, 1013},
		{"CloseBadGateway", CloseBadGateway, 1014},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}
}

// The library names each code: a Go value that drifted from the header's
// would get another code's name (or none).
func TestHardeningErrnosMatchTheLibrarysNames(t *testing.T) {
	for _, c := range []struct {
		code Errno
		name string
	}{
		{ErrIdle, "WH_EIDLE"},
		{ErrBudget, "WH_EBUDGET"},
		{ErrTooManyFiles, "WH_EMFILE"},
		{ErrBroker, "WH_EBROKER"},
	} {
		if got := c.code.Name(); got != c.name {
			t.Errorf("Errno(%d).Name() = %q, want %q", int(c.code), got, c.name)
		}
		if c.code.Error() == "" {
			t.Errorf("%s has no description", c.name)
		}
	}
}

// The path and query go into the request line: a CR/LF there would forge
// headers or a second request, a NUL would cut the URL short.
func TestDialRefusesControlCharactersInTheURL(t *testing.T) {
	for _, u := range []string{
		"ws://127.0.0.1:9/a\r\nX-Injected: 1",
		"ws://127.0.0.1:9/a\nb",
		"ws://127.0.0.1:9/?q=1\rb",
		"ws://127.0.0.1:9/a b",
		"ws://127.0.0.1:9/a\x00\r\nX-Injected: 1",
	} {
		if _, err := Dial(ctxT(t), u, nil); !errors.Is(err, ErrURL) {
			t.Errorf("%q: %v, want ErrURL", u, err)
		}
	}
}

func TestDialRefusesCRLFOrNULInHeadersOriginOrSubprotocols(t *testing.T) {
	for i, o := range []*DialOptions{
		{Header: map[string]string{"X-A": "1\r\nX-Injected: 1"}},
		{Header: map[string]string{"X-A\r\nX-Injected": "1"}},
		{Header: map[string]string{"X-A": "1\n"}},
		{Header: map[string]string{"X-A": "1\x00"}},
		{Origin: "http://a.test\r\nX-Injected: 1"},
		{Origin: "http://a.test\x00"},
		{Subprotocols: "v1\r\nX-Injected: 1"},
	} {
		if _, err := Dial(ctxT(t), "ws://127.0.0.1:9/", o); !errors.Is(err, ErrInvalid) {
			t.Errorf("options %d: %v, want ErrInvalid", i, err)
		}
	}
}
