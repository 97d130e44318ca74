//go:build !breakglass_pkgconfig

package breakglass

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The default flags link the repository's release build: the library this test binary has
// mapped is target/release/libbreakglass.so, never target/debug's.
func TestDefaultBuildLinksTheReleaseLibrary(t *testing.T) {
	Version() // the library is loaded at start-up; a call makes the dependency plain
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Skipf("no /proc/self/maps: %v", err)
	}
	defer f.Close()
	want, err := filepath.Abs(filepath.Join("..", "..", "target", "release"))
	if err != nil {
		t.Fatal(err)
	}
	if real, err := filepath.EvalSymlinks(want); err == nil {
		want = real
	}
	var mapped []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) >= 6 && strings.Contains(filepath.Base(fields[5]), "libbreakglass.so") {
			mapped = append(mapped, fields[5])
		}
	}
	if len(mapped) == 0 {
		t.Fatal("no libbreakglass.so in /proc/self/maps")
	}
	for _, path := range mapped {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			path = real
		}
		if filepath.Dir(path) != want {
			t.Errorf("mapped %s, want the release build in %s", path, want)
		}
	}
}
