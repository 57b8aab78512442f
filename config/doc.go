// Package config owns multihomed's configuration: the typed structs the rest
// of the daemon reads, their defaults, and strict validation.
//
// It is the only package that imports viper. A configuration is read from a
// YAML file, with a few global settings (logging) also taken from
// MULTIHOMED_* environment variables and command-line flags. Unknown keys are
// errors, and validation reports every problem at once, each with its path and
// what would fix it, so an operator fixes a file in one pass.
//
// Secrets (TCP-MD5 passwords) are held in Secret values that never print:
// neither logs, errors nor dumps of a Config reveal them.
//
// The package never touches the network or the kernel; reading a
// password_file is its only I/O besides the config file itself, and it is
// careful there (regular files only, no symlinks, never blocking, refused
// when others may write them). CheckRequest, the API's entry, opens no file
// at all. Every list has a cap (limits.go) and a validation reports at most
// MaxProblems problems, so any input costs bounded time and memory.
//
// Validation is split by concern: validate.go orders the sections, one
// validate_*.go file checks each, check.go holds the shared value parsers.
package config
