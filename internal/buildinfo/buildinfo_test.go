package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	vcs := func(rev, modified string) []debug.BuildSetting {
		return []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: rev}, {Key: "vcs.modified", Value: modified}}
	}
	tests := []struct {
		name                    string
		bi                      *debug.BuildInfo
		ldVersion, ldCommit     string
		wantVersion, wantCommit string
		wantGo                  string
	}{
		{name: "no build info", wantVersion: "devel", wantCommit: "unknown", wantGo: runtime.Version()},
		{name: "go run or go test", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/statehub/statehub", Version: "(devel)"}},
			wantVersion: "devel", wantCommit: "unknown", wantGo: "go1.26.8"},
		{name: "go install at a version", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}},
			wantVersion: "v1.2.3", wantCommit: "unknown", wantGo: "go1.26.8"},
		{name: "build in a clean checkout", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261201120000-0123456789ab"}, Settings: vcs("0123456789abcdef", "false")},
			wantVersion: "v0.0.0-20261201120000-0123456789ab", wantCommit: "0123456789abcdef", wantGo: "go1.26.8"},
		{name: "build in a modified checkout", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef", "true")},
			wantVersion: "devel", wantCommit: "0123456789abcdef+dirty", wantGo: "go1.26.8"},
		{name: "the linker's values win", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: vcs("0123456789abcdef", "true")},
			ldVersion: "v2.0.0", ldCommit: "fedcba", wantVersion: "v2.0.0", wantCommit: "fedcba", wantGo: "go1.26.8"},
		{name: "linker version, stamped commit", bi: &debug.BuildInfo{GoVersion: "go1.26.8", Settings: vcs("0123456789abcdef", "false")},
			ldVersion: "v2.0.0", wantVersion: "v2.0.0", wantCommit: "0123456789abcdef", wantGo: "go1.26.8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := from(tc.bi, tc.ldVersion, tc.ldCommit)
			if got.Version != tc.wantVersion || got.Commit != tc.wantCommit || got.GoVersion != tc.wantGo {
				t.Errorf("from() = %+v, want version %q commit %q go %q", got, tc.wantVersion, tc.wantCommit, tc.wantGo)
			}
			if got.Platform != runtime.GOOS+"/"+runtime.GOARCH {
				t.Errorf("platform %q", got.Platform)
			}
		})
	}
}

func TestReadAndString(t *testing.T) {
	i := Read()
	if i.Version == "" || i.Commit == "" || !strings.HasPrefix(i.GoVersion, "go") {
		t.Fatalf("Read() = %+v: a field is empty", i)
	}
	s := i.String()
	for _, want := range []string{"statehub ", i.Version, "commit " + i.Commit, i.GoVersion, runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q, lacks %q", s, want)
		}
	}
}
