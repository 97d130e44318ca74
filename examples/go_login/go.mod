module github.com/libbreakglass/libbreakglass/examples/go_login

go 1.21

require github.com/libbreakglass/libbreakglass/bindings/go v0.0.0

// The binding from this checkout (it links the checkout's target/release library).
replace github.com/libbreakglass/libbreakglass/bindings/go => ../../bindings/go
