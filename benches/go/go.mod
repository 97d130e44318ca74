module github.com/libbreakglass/libbreakglass/benches/go

go 1.21

require github.com/libbreakglass/libbreakglass/bindings/go v0.0.0

replace github.com/libbreakglass/libbreakglass/bindings/go => ../../bindings/go
