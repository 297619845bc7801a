// Package scripts holds the release script; its test builds one foreign target with it.
package scripts

import (
	"bytes"
	"debug/buildinfo"
	"debug/pe"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReleaseScript runs release.sh for one foreign target, windows/arm64 (one build keeps CI
// fast; the others differ only in GOOS and GOARCH), and checks the binary: a Windows ARM64
// executable, built static and trimmed, stamped with the version.
func TestReleaseScript(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a release binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	const version = "v0.0.0-releasetest"
	out := t.TempDir()
	cmd := exec.Command("bash", "release.sh", version, out)
	// BUILDVCS=false: the test's checkout may be one Git refuses to read (another owner).
	cmd.Env = append(os.Environ(), "TARGETS=windows/arm64", "BUILDVCS=false")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	name := "statehub-" + version + "-windows-arm64.exe"
	exe := filepath.Join(out, name)
	if fi, err := os.Stat(exe); err != nil || fi.Size() == 0 {
		t.Fatalf("%s: %v", name, err)
	}

	f, err := pe.Open(exe)
	if err != nil {
		t.Fatalf("%s is not a Windows executable: %v", name, err)
	}
	defer f.Close()
	if f.Machine != pe.IMAGE_FILE_MACHINE_ARM64 {
		t.Errorf("%s: machine %#x, want ARM64", name, f.Machine)
	}

	bi, err := buildinfo.ReadFile(exe)
	if err != nil {
		t.Fatalf("%s: no build information: %v", name, err)
	}
	settings := map[string]string{}
	for _, s := range bi.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"GOOS": "windows", "GOARCH": "arm64", "CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("%s: build setting %s = %q, want %q", name, k, settings[k], want)
		}
	}
	// With -trimpath the build information leaves -ldflags out; the version string that -X set is
	// in the binary's data.
	b, err := os.ReadFile(exe)
	if err != nil || !bytes.Contains(b, []byte(version)) {
		t.Errorf("%s does not hold its version %s (%v)", name, version, err)
	}
	if bi.Path != "github.com/statehub/statehub" || bi.GoVersion != runtime.Version() {
		t.Errorf("%s: main package %s built with %s", name, bi.Path, bi.GoVersion)
	}

	sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS-"+version))
	if err != nil || !strings.Contains(string(sums), name) {
		t.Errorf("SHA256SUMS-%s: %q, %v", version, sums, err)
	}
}
