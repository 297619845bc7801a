#!/usr/bin/env bash
# Cross-compiles Statehub's release binaries: static (CGO_ENABLED=0), reproducible paths
# (-trimpath), stripped, each stamped with the version given here and with the commit it was built
# from (Go's VCS build information; `statehub -version` prints both), and a SHA256SUMS file.
#
#   scripts/release.sh VERSION [OUTDIR]        e.g. scripts/release.sh v1.2.0 (OUTDIR: dist)
#
# It writes OUTDIR/statehub-VERSION-OS-ARCH (.exe on Windows) for every target of $TARGETS,
# by default linux, darwin and windows on amd64 and arm64. BUILDVCS=false leaves the commit out
# (for a tree that is not a Git checkout, or one Git refuses to read).
set -euo pipefail

version=${1:?usage: scripts/release.sh VERSION [OUTDIR]}
out=${2:-dist}
targets=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64}
buildvcs=${BUILDVCS:-auto}

mkdir -p "$out"
out=$(cd "$out" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")/.."

files=()
for target in $targets; do
  goos=${target%/*}
  goarch=${target#*/}
  name="statehub-$version-$goos-$goarch"
  if [ "$goos" = windows ]; then
    name+=.exe
  fi
  echo "building $name"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch go build -trimpath -buildvcs="$buildvcs" \
    -ldflags "-s -w -X github.com/statehub/statehub/internal/buildinfo.version=$version" \
    -o "$out/$name" .
  files+=("$name")
done

cd "$out"
if command -v sha256sum >/dev/null; then
  sha256sum "${files[@]}" >"SHA256SUMS-$version"
else
  shasum -a 256 "${files[@]}" >"SHA256SUMS-$version"
fi
echo "wrote ${#files[@]} binaries and SHA256SUMS-$version to $out"
