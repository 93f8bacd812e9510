package wirehub

// Linking. By default the package links the static library of the
// repository's own CMake build (./scripts/build.sh writes build/libwirehub.a).
// Other builds:
//   - go build -tags wirehub_pkgconfig: link what `pkg-config wirehub` names
//     (an installed library);
//   - go build -tags wirehub_external with CGO_LDFLAGS set, e.g.
//     CGO_LDFLAGS="/path/to/libwirehub.a -lssl -lcrypto -lz -lstdc++ -lpthread -lm".
// CGO_CFLAGS="-I/path/to/capi" overrides the header location likewise.

/*
#cgo CFLAGS: -I${SRCDIR}/../../capi -O2
#cgo !wirehub_external,!wirehub_pkgconfig LDFLAGS: ${SRCDIR}/../../build/libwirehub.a -lssl -lcrypto -lz -lstdc++ -lpthread -lm
#cgo wirehub_pkgconfig pkg-config: wirehub
#cgo wirehub_pkgconfig LDFLAGS: -lstdc++
#include "wirehub_go.h"
*/
import "C"
