package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// clientConfig is mhctl's defaults file (docs/install.md, "mhctl
// defaults"): where the daemon is and the TLS files to reach it. Each key
// stands for the flag of the same name.
type clientConfig struct {
	Socket     string `yaml:"socket"`
	Address    string `yaml:"address"`
	CACert     string `yaml:"cacert"`
	Cert       string `yaml:"cert"`
	Key        string `yaml:"key"`
	ServerName string `yaml:"server_name"`
}

// clientConfigPaths lists where mhctl looks, first match wins: the user's
// file, then the machine's.
func clientConfigPaths(getenv func(string) string) []string {
	var out []string
	if dir := getenv("XDG_CONFIG_HOME"); dir != "" {
		out = append(out, filepath.Join(dir, "mhctl.yaml"))
	} else if home := getenv("HOME"); home != "" {
		out = append(out, filepath.Join(home, ".config", "mhctl.yaml"))
	}
	return append(out, "/etc/multihomed/mhctl.yaml")
}

// loadClientConfig reads the first of paths that exists. It returns the
// zero config and "" when none does; a file that exists but cannot be
// read or holds an unknown key is an error naming the file. File paths in
// it may start with "~/" (the home directory, from home) or be relative
// to the file's directory.
func loadClientConfig(paths []string, home string) (clientConfig, string, error) {
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return clientConfig{}, p, fmt.Errorf("client config %s: %w", p, err)
		}
		var c clientConfig
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return clientConfig{}, p, fmt.Errorf("client config %s: %w (known keys: socket, address, cacert, cert, key, server_name)", p, err)
		}
		dir := filepath.Dir(p)
		for _, f := range []*string{&c.Socket, &c.CACert, &c.Cert, &c.Key} {
			*f = resolvePath(*f, dir, home)
		}
		return c, p, nil
	}
	return clientConfig{}, "", nil
}

func resolvePath(p, dir, home string) string {
	switch {
	case p == "":
		return ""
	case strings.HasPrefix(p, "~/") && home != "":
		return filepath.Join(home, p[2:])
	case filepath.IsAbs(p):
		return p
	}
	return filepath.Join(dir, p)
}

// apply sets o's connection fields from c, except where the flag was given
// on the command line: flags win over the file.
func (c clientConfig) apply(o *options, flags *pflag.FlagSet) {
	for _, f := range []struct {
		flag string
		dst  *string
		v    string
	}{
		{"socket", &o.socket, c.Socket},
		{"address", &o.address, c.Address},
		{"cacert", &o.cacert, c.CACert},
		{"cert", &o.cert, c.Cert},
		{"key", &o.key, c.Key},
		{"server-name", &o.serverName, c.ServerName},
	} {
		if f.v != "" && !flags.Changed(f.flag) {
			*f.dst = f.v
		}
	}
}

// applyClientConfig reads the defaults file, if any, into o. It runs when
// mhctl first connects, so commands that do not (version, completion)
// work even with a broken file.
func (o *options) applyClientConfig() error {
	c, _, err := loadClientConfig(clientConfigPaths(os.Getenv), os.Getenv("HOME"))
	if err != nil {
		return codedError{exitUsage, err}
	}
	c.apply(o, o.flags)
	return nil
}
