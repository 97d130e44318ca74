package breakglass

// Tests of how the package builds: without cgo, without the header, and which library the
// default flags link. Each runs the go command on the package's own sources.

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// goCommand is the go tool that runs these tests (the one in PATH, else GOROOT's).
func goCommand(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the go command: skipped with -short")
	}
	if path, err := exec.LookPath("go"); err == nil {
		return path
	}
	path := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("no go command found: %v", err)
	}
	return path
}

// goBuild runs `go build .` in dir with extra environment settings and returns its output
// and whether it succeeded. The caller's cgo flag variables are dropped, so the package's
// own directives are what is tested.
func goBuild(t *testing.T, dir string, env ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(goCommand(t), "build", ".")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		switch strings.SplitN(kv, "=", 2)[0] {
		case "CGO_ENABLED", "CGO_CFLAGS", "CGO_LDFLAGS", "GOFLAGS":
			continue
		}
		cmd.Env = append(cmd.Env, kv)
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err == nil
}

func TestBuildWithoutCgoFailsWithAMessage(t *testing.T) {
	out, ok := goBuild(t, ".", "CGO_ENABLED=0")
	if ok {
		t.Fatalf("CGO_ENABLED=0 go build succeeded; want a failure\n%s", out)
	}
	if !strings.Contains(out, "breakglass_needs_cgo__build_with_CGO_ENABLED_1_and_a_C_compiler") {
		t.Errorf("CGO_ENABLED=0 go build failed without the package's message:\n%s", out)
	}
}

// The module as the module proxy serves it: the package's files without the repository's
// include/ and target/ around it.
func TestMissingHeaderSaysHowToFixIt(t *testing.T) {
	dir := t.TempDir()
	sources, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range sources {
		if strings.HasSuffix(name, "_test.go") || !(strings.HasSuffix(name, ".go") ||
			strings.HasSuffix(name, ".h") || name == "go.mod") {
			continue
		}
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, ok := goBuild(t, dir, "CGO_ENABLED=1")
	if ok {
		t.Fatalf("go build without breakglass.h succeeded\n%s", out)
	}
	for _, want := range []string{"breakglass.h not found", "-tags breakglass_pkgconfig", "make release"} {
		if !strings.Contains(out, want) {
			t.Errorf("go build without breakglass.h: output lacks %q:\n%s", want, out)
		}
	}
}
