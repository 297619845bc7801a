package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/statehub/statehub/hub"
)

var cmdBackup = &command{
	name:     "backup",
	synopsis: "[-no-check] FILE",
	summary:  "download a backup of the whole server (needs the admin token)",
	about: `Backup downloads a consistent backup of the whole server (GET /.snapshot; STATEHUB_TOKEN must be
the admin token) into FILE, or to stdout for -. It writes a temporary file beside FILE and
renames it into place once complete and synced, so FILE is never a partial backup. Then it checks
the backup by restoring it into a temporary directory beside FILE (which needs as much room
again), unless -no-check. Start a server from it with statehub restore.`,
	run: func(r *runner) error {
		noCheck := r.fs.Bool("no-check", false, "do not check the backup by restoring it")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		path := args[0]
		if path == "-" {
			_, err := c.Backup(r.ctx, r.env.Stdout)
			return err
		}
		tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name()) // a no-op once renamed
		n, err := c.Backup(r.ctx, tmp)
		if err == nil {
			err = tmp.Sync()
		}
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		checked := ""
		if !*noCheck {
			seq, err := checkBackup(tmp.Name())
			if err != nil {
				return fmt.Errorf("the backup is damaged (the server may have failed while sending it): %w", err)
			}
			checked = fmt.Sprintf(", checked: seq %d", seq)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return err
		}
		syncDir(filepath.Dir(path))
		fmt.Fprintf(r.env.Stderr, "wrote %s (%d bytes%s)\n", path, n, checked)
		return nil
	},
}

// checkBackup restores the backup at path into a temporary directory beside it, removed
// afterwards, and returns its seq.
func checkBackup(path string) (uint64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(filepath.Dir(path), ".statehub-check-*")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	return hub.Restore(hub.StoreConfig{Dir: dir}, f)
}

// syncDir makes a rename in dir durable; an error only loses that.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

var cmdRestore = &command{
	name:     "restore",
	synopsis: "[-data DIR] FILE | restore -check FILE",
	summary:  "start an empty data directory from a backup (offline), or check a backup",
	about: `Restore starts an empty data directory (-data, default $STATEHUB_DATA or ./data, the server's
default) from a backup that statehub backup or GET /.snapshot made, verifying every record and
file, and exits; then serve it with statehub -data DIR. It does not talk to a server: a running
server's state is its own, and replacing it means stopping it, restoring into a new directory
and starting it there. statehub -data DIR -restore FILE does both steps at once.

With -check it only verifies FILE, by restoring it into a temporary directory beside FILE that
it removes afterwards.`,
	run: func(r *runner) error {
		def := r.env.Getenv("STATEHUB_DATA")
		if def == "" {
			def = "./data"
		}
		dir := r.fs.String("data", def, "the data directory to start; it must be empty or absent")
		check := r.fs.Bool("check", false, "only check the backup")
		args, err := r.parse(r.args, 1, 1)
		if err != nil {
			return err
		}
		if *check {
			seq, err := checkBackup(args[0])
			if err != nil {
				return fmt.Errorf("%s is not a good backup: %w", args[0], err)
			}
			fmt.Fprintf(r.env.Stdout, "%s is a good backup (seq %d)\n", args[0], seq)
			return nil
		}
		f, err := os.Open(args[0])
		if err != nil {
			return err
		}
		defer f.Close()
		seq, err := hub.Restore(hub.StoreConfig{Dir: *dir}, io.Reader(f))
		if err != nil {
			return fmt.Errorf("restoring %s into %s: %w", args[0], *dir, err)
		}
		fmt.Fprintf(r.env.Stdout, "restored %s into %s (seq %d); serve it with: statehub -data %s\n", args[0], *dir, seq, *dir)
		return nil
	},
}
