package bench

import (
	"os"
	"strings"
	"testing"

	breakglass "github.com/libbreakglass/libbreakglass/bindings/go"
)

func TestMain(m *testing.M) {
	code := m.Run()
	// Report which copy of the library was loaded, so the numbers can be attributed.
	if maps, err := os.ReadFile("/proc/self/maps"); err == nil {
		for _, l := range strings.Split(string(maps), "\n") {
			if i := strings.Index(l, "/"); i >= 0 && strings.Contains(l, "libbreakglass") {
				println("loaded:", l[i:])
				break
			}
		}
	}
	os.Exit(code)
}

func BenchmarkBindingGenerate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := breakglass.Generate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBindingPair(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c, _ := breakglass.Generate()
		if err := breakglass.Verify(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBareGenerate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if BareGenerate() != 0 {
			b.Fatal("bg_generate")
		}
	}
}

func BenchmarkBarePair(b *testing.B) {
	for i := 0; i < b.N; i++ {
		BareGenerate()
		if BareVerifyBuf() != 0 {
			b.Fatal("bg_verify")
		}
	}
}

func BenchmarkBarePairGoString(b *testing.B) {
	for i := 0; i < b.N; i++ {
		BareGenerate()
		if BareVerify(BareCode()) != 0 {
			b.Fatal("bg_verify")
		}
	}
}

func BenchmarkStdlibGenerate(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if _, err := StdGenerate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStdlibPair(b *testing.B) {
	for i := 0; i < b.N; i++ {
		c, _ := StdGenerate()
		if !StdVerify(c) {
			b.Fatal("verify")
		}
	}
}
