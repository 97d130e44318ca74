module github.com/libbreakglass/libbreakglass/bindings/go

go 1.21
