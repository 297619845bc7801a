//go:build !linux

package web

import "net"

// watchClose watches nothing off Linux: a stream finds its client gone at a failed write, at the
// latest the second keep-alive after the client left.
func watchClose(net.Conn, func()) (unwatch func()) { return func() {} }
