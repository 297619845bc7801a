package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/statehub/statehub/hub"
)

// clusterFlags choose the store: the data directory (the default), or an etcd cluster shared by
// any number of Statehub nodes (-store etcd).
type clusterFlags struct {
	store     string
	endpoints string
	prefix    string
	user      string
	password  string
	cert, key string // client certificate for etcd's TLS
	ca        string // CA that signs etcd's server certificates
	blobDir   string
}

func (c *clusterFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&c.store, "store", "local", "where the state lives: local (the -data directory, or memory) or etcd (a cluster shared by every node started with the same -etcd-endpoints and -etcd-prefix)")
	fs.StringVar(&c.endpoints, "etcd-endpoints", "", "comma-separated etcd client URLs, e.g. http://10.0.0.1:2379,http://10.0.0.2:2379 (with -store etcd)")
	fs.StringVar(&c.prefix, "etcd-prefix", hub.DefaultEtcdPrefix, "every etcd key Statehub writes starts with this")
	fs.StringVar(&c.user, "etcd-user", "", "etcd user (with -etcd-password)")
	fs.StringVar(&c.password, "etcd-password", "", "etcd password; prefer STATEHUB_ETCD_PASSWORD to a flag, which other users can see")
	fs.StringVar(&c.cert, "etcd-cert", "", "PEM client certificate for etcd over TLS (with -etcd-key)")
	fs.StringVar(&c.key, "etcd-key", "", "PEM private key of -etcd-cert")
	fs.StringVar(&c.ca, "etcd-ca", "", "PEM CA certificates that sign etcd's server certificates (https endpoints)")
	fs.StringVar(&c.blobDir, "etcd-blob-dir", "", "directory every node shares (e.g. an NFS mount) for the bytes of stored files; without it file writes fail in cluster mode")
}

// validate checks the flags' combinations.
func (c *clusterFlags) validate() error {
	switch c.store {
	case "local":
		return nil
	case "etcd":
	default:
		return fmt.Errorf("-store must be local or etcd, not %q", c.store)
	}
	if strings.TrimSpace(c.endpoints) == "" {
		return errors.New("-store etcd needs -etcd-endpoints")
	}
	if (c.cert == "") != (c.key == "") {
		return errors.New("-etcd-cert and -etcd-key go together")
	}
	return nil
}

// config returns the etcd store's configuration.
func (c *clusterFlags) config() (hub.EtcdConfig, error) {
	ec := hub.EtcdConfig{Prefix: c.prefix, Username: c.user, Password: c.password, BlobDir: c.blobDir}
	for _, e := range strings.Split(c.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			ec.Endpoints = append(ec.Endpoints, e)
		}
	}
	if c.cert != "" || c.ca != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.cert != "" {
			pair, err := tls.LoadX509KeyPair(c.cert, c.key)
			if err != nil {
				return ec, fmt.Errorf("-etcd-cert: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		if c.ca != "" {
			pem, err := os.ReadFile(c.ca)
			if err != nil {
				return ec, fmt.Errorf("-etcd-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return ec, fmt.Errorf("-etcd-ca: no certificate in %s", c.ca)
			}
			tc.RootCAs = pool
		}
		ec.TLS = tc
	}
	return ec, nil
}
