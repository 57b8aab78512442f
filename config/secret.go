package config

import "log/slog"

// Secret holds a password. Every way of printing it prints a placeholder;
// only Reveal returns the value.
type Secret struct{ v string }

// NewSecret wraps s.
func NewSecret(s string) Secret { return Secret{v: s} }

const redacted = "[redacted]"

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether a non-empty secret is held.
func (s Secret) IsSet() bool { return s.v != "" }

// String implements fmt.Stringer without revealing the secret.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString keeps %#v from revealing the secret.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// MarshalText keeps JSON, YAML and other text encodings from revealing it.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue keeps slog from revealing it.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }
