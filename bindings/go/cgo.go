package wirehub

// Linking. By default the package links the static library of the
// repository's own CMake build (./scripts/build.sh writes build/libwirehub.a).
// Other builds:
//   - go build -tags wirehub_pkgconfig: compile against and link what
//     `pkg-config wirehub` names (an installed header and library). That
//     library is the shared one and the .pc file gives no rpath: run the
//     program with LD_LIBRARY_PATH=$(pkg-config --variable=libdir wirehub)
//     (as scripts/test-go.sh does), or build with CGO_LDFLAGS="-Wl,-rpath,
//     $(pkg-config --variable=libdir wirehub)" (no space after the comma);
//   - go build -tags wirehub_external with CGO_LDFLAGS set, e.g.
//     CGO_LDFLAGS="/path/to/libwirehub.a -lssl -lcrypto -lz -lstdc++ -lpthread -lm".
// CGO_CFLAGS="-I/path/to/capi" overrides the header location likewise.

/*
#cgo CFLAGS: -O2
#cgo !wirehub_pkgconfig CFLAGS: -I${SRCDIR}/../../capi
#cgo !wirehub_external,!wirehub_pkgconfig LDFLAGS: ${SRCDIR}/../../build/libwirehub.a -lssl -lcrypto -lz -lstdc++ -lpthread -lm
#cgo wirehub_pkgconfig pkg-config: wirehub
#cgo wirehub_pkgconfig LDFLAGS: -lstdc++
#include "wirehub_go.h"
*/
import "C"
