package config

import (
	"fmt"
	"io"
	"os"
)

// readSecretFile reads a small regular file. Devices, FIFOs and large files
// are refused: reading /dev/zero or a pipe would hang validation.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %v", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %v", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; put the key in a plain file", path)
	}
	if st.Size() > 4096 {
		return nil, fmt.Errorf("%s is %d bytes; a TCP-MD5 key file holds one key of at most %d bytes", path, st.Size(), maxMD5KeyLen)
	}
	data, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return nil, fmt.Errorf("cannot read it: %v", err)
	}
	return data, nil
}
