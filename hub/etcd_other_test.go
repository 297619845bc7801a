//go:build !linux

package hub_test

import "os/exec"

// dieWithParent does nothing where the kernel cannot tie a child's life to its parent's; TestMain
// still stops the package's etcd.
func dieWithParent(*exec.Cmd) {}
