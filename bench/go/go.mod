module github.com/wirehub/wirehub/bench/go

go 1.19

require github.com/wirehub/wirehub/bindings/go v0.0.0

replace github.com/wirehub/wirehub/bindings/go => ../../bindings/go
