//go:build !unix

package sqlite

import (
	"errors"
	"os"
)

// ErrInUse is returned by Open when another process holds the folder.
var ErrInUse = errors.New("sqlite: store folder is in use")

// lockDir refuses: without flock the store cannot keep a second process off
// its folder, and two writers on one file would break fencing.
func lockDir(dir string) (*os.File, error) {
	return nil, errors.New("sqlite: folder locking is only implemented on unix systems")
}

func unlockDir(f *os.File) error { return nil }
