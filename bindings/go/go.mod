module github.com/wirehub/wirehub/bindings/go

// 1.19: Debian bookworm's golang-go, which scripts/deps-go.sh installs when no
// Go toolchain is present. Only the standard library is used.
go 1.19
