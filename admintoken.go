package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/statehub/statehub/auth"
	"github.com/statehub/statehub/hub/wal"
)

// adminTokenFile is the name of the admin token's file in the data directory.
const adminTokenFile = "admin-token"

// minAdminToken is the shortest token accepted from the file (auth.New's minimum).
const minAdminToken = 16

// setupAdminToken gives the server an admin token when the operator configured none (and not
// -open, where admin is everyone's): the one in <data>/admin-token, made at the first start
// (mode 0600) and kept across restarts; memory-only (data ""), a fresh one per start, printed once
// to stderr since there is no file. The log names the file, never the token. The token made here
// does not count as configured auth (auth.Config.AdminTokenGenerated): a server with nothing else
// stays protected. Delete the file and restart to have a new one made.
func setupAdminToken(c *auth.Config, data string, log *slog.Logger, stderr io.Writer) error {
	if c.AdminToken != "" || c.Open {
		return nil
	}
	if data == "" {
		tok, err := newAdminToken()
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "statehub: the admin token of this memory-only run (kept nowhere; a new one at each start): %s\n", tok)
		c.AdminToken, c.AdminTokenGenerated = tok, true
		return nil
	}
	path := filepath.Join(data, adminTokenFile)
	tok, created, err := loadOrCreateAdminToken(path)
	if err != nil {
		return fmt.Errorf("the admin token: %w", err)
	}
	if created {
		log.Info("made an admin token for admin operations (Authorization: Bearer <token>); it is kept across restarts", "file", path)
	} else {
		log.Info("admin token", "file", path)
		if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
			log.Warn("the admin token file may be read by other users: chmod 600 it", "file", path, "mode", fi.Mode().Perm().String())
		}
	}
	c.AdminToken, c.AdminTokenGenerated = tok, true
	return nil
}

// newAdminToken returns 32 random bytes in unpadded base64url: 43 characters.
func newAdminToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// loadOrCreateAdminToken reads the token in path (surrounding white space ignored), or, when
// there is no such file, makes one and writes it there with mode 0600: into path.tmp, fsynced,
// renamed over path, the directory fsynced, so that a crash leaves either no file or the whole
// token. created says which. A file that holds less than a token is an error naming it.
func loadOrCreateAdminToken(path string) (tok string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok = strings.TrimSpace(string(b))
		if len(tok) < minAdminToken {
			return "", false, fmt.Errorf("%s holds no token of at least %d bytes: write one in it, or delete it to have one made", path, minAdminToken)
		}
		return tok, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	if tok, err = newAdminToken(); err != nil {
		return "", false, err
	}
	// The data directory may not exist yet: a cluster node (-store etcd) keeps only this file there.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", false, err
	}
	tmp := path + ".tmp"
	os.Remove(tmp) // left by a crash during an earlier first start
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", false, err
	}
	_, err = f.WriteString(tok + "\n")
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return "", false, err
	}
	if err := (wal.OSFS{}).SyncDir(filepath.Dir(path)); err != nil {
		return "", false, err
	}
	return tok, true, nil
}
