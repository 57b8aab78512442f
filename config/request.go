package config

// CheckRequest validates configuration text sent over the NOC API
// (ValidateConfig), whose caller may be a viewer on another machine. It
// checks the structure only and never opens a file: a password_file could
// be a FIFO that blocks, and the answer would tell the caller whether a
// root-only file exists. For valid text it returns the advice (Advice) and a
// note for each file reference it did not read; for invalid text an *Error
// as Parse does. Environment variables apply as in Parse; no flags do.
func CheckRequest(source string, data []byte) ([]Problem, error) {
	cfg, err := parse(source, data, nil, options{noFiles: true})
	if err != nil {
		return nil, err
	}
	return Advice(cfg), nil
}

// options change what one validation may do.
type options struct {
	// noFiles forbids opening files named in the configuration; each
	// reference becomes a note instead.
	noFiles bool
}

// fileRef records that the key at path names file. Under noFiles it notes
// that the file was not read; otherwise the key's owner reads it, or the
// package that uses it does (TLS and CA files are read by api and health).
func (c *checker) fileRef(path, file string) {
	if c.opts.noFiles && file != "" {
		c.note(path, "%s was not read: validation over the API checks structure only; run `multihomed config validate` on the router, or reload, to check the file", file)
	}
}
