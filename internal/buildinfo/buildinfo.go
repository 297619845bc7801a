package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set by the linker (-ldflags -X) in release builds; see the package comment.
var (
	version string
	commit  string
)

// Unset values.
const (
	DevelVersion  = "devel"   // Info.Version of a build that carries no version
	UnknownCommit = "unknown" // Info.Commit of a build that carries no commit
)

// Info describes the running binary.
type Info struct {
	Version   string // a release's version (v1.2.3), a Go pseudo-version, or DevelVersion
	Commit    string // the Git commit, with "+dirty" when the work tree had changes, or UnknownCommit
	GoVersion string // the Go release that built the binary (go1.26.8)
	Platform  string // GOOS/GOARCH of the binary
}

// Read returns the running binary's Info.
func Read() Info {
	bi, _ := debug.ReadBuildInfo()
	return from(bi, version, commit)
}

// from builds an Info from build information (nil when the binary has none) and the values the
// linker set, which win.
func from(bi *debug.BuildInfo, ldVersion, ldCommit string) Info {
	i := Info{Version: ldVersion, Commit: ldCommit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if bi.GoVersion != "" {
			i.GoVersion = bi.GoVersion
		}
		if v := bi.Main.Version; i.Version == "" && v != "" && v != "(devel)" {
			i.Version = v
		}
		var rev string
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if i.Commit == "" && rev != "" {
			i.Commit = rev
			if dirty {
				i.Commit += "+dirty"
			}
		}
	}
	if i.Version == "" {
		i.Version = DevelVersion
	}
	if i.Commit == "" {
		i.Commit = UnknownCommit
	}
	return i
}

// String is the line `statehub -version` prints: "statehub v1.2.3 (commit 0a1b2c..., go1.26.8 linux/amd64)".
func (i Info) String() string {
	return "statehub " + i.Version + " (commit " + i.Commit + ", " + i.GoVersion + " " + i.Platform + ")"
}
