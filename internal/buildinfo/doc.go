// Package buildinfo tells which build of Statehub is running: its version, the commit it was built
// from and the Go release that built it, for `statehub -version` and the statehub_build_info
// metric.
//
// The values come from the binary's own build information (runtime/debug.ReadBuildInfo): the
// module's version when it was installed with `go install ...@vX.Y.Z`, and the vcs.revision and
// vcs.modified settings that `go build` stamps in a Git checkout. A release build may set both
// through the linker, which wins over the build information:
//
//	go build -ldflags "-X github.com/statehub/statehub/internal/buildinfo.version=v1.2.3 \
//	    -X github.com/statehub/statehub/internal/buildinfo.commit=$(git rev-parse HEAD)"
//
// A build that carries neither says "devel" and "unknown". Nothing here changes after start, so
// every function is safe to call from any goroutine.
package buildinfo
