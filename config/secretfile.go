package config

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// secretOpenFlags open a secret file without blocking on a FIFO, without
// following a symbolic link in the last component, and without leaking the
// descriptor into a child process.
const secretOpenFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOFOLLOW | unix.O_CLOEXEC

// maxSecretFileSize bounds what is read of a secret file.
const maxSecretFileSize = 4096

// readSecretFile reads the secret file named by the key at path (such as
// uplinks[0].bgp.password_file). Only a regular file is accepted, checked on
// the open descriptor (fstat), so the file cannot be swapped between check
// and read. A file others may write is refused (they could change the key);
// one every local user may read is refused in the production profile and
// returned with a warning otherwise.
func readSecretFile(file string, profile Profile) (data []byte, warning string, err error) {
	fd, err := unix.Open(file, secretOpenFlags, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, "", fmt.Errorf("%s is a symbolic link; name the file itself", file)
	}
	if err != nil {
		return nil, "", fmt.Errorf("cannot read it: open %s: %v", file, err)
	}
	f := os.NewFile(uintptr(fd), file)
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, "", fmt.Errorf("cannot read it: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, "", fmt.Errorf("%s is not a regular file (%s); put the key in a plain file", file, st.Mode().Type())
	}
	perm := st.Mode().Perm()
	if perm&0o022 != 0 {
		return nil, "", fmt.Errorf("%s is group- or world-writable (mode %04o), so others could change the key; chmod 0600 %s", file, perm, file)
	}
	if perm&0o004 != 0 {
		msg := fmt.Sprintf("%s is world-readable (mode %04o): every local user can read the key; chmod 0600 %s", file, perm, file)
		if profile == ProfileProduction {
			return nil, "", errors.New(msg + " (the production profile refuses it)")
		}
		warning = msg
	}
	if st.Size() > maxSecretFileSize {
		return nil, "", fmt.Errorf("%s is %d bytes, more than the %d a key file may hold; put the key alone in it", file, st.Size(), maxSecretFileSize)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err != nil {
		return nil, "", fmt.Errorf("cannot read it: %v", err)
	}
	return data, warning, nil
}
