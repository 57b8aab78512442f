package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the value, such as uplinks[1].bgp.neighbor.
	Path string
	// Message says what is wrong and how to fix it.
	Message string
}

// String is the problem as printed: "path: message", or the message
// alone when it concerns no field.
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error lists every problem found in a configuration. Load and Parse return
// it (as an error) whenever a configuration is rejected for its content.
type Error struct {
	// Source names the file or other origin of the configuration.
	Source string
	// Problems are in file order where that is known.
	Problems []Problem
}

// Error names the source and lists every problem, one per line.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config: %s: %d problem(s):", e.Source, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  ")
		b.WriteString(p.String())
	}
	return b.String()
}

// Global settings that may also come from the environment and flags, in
// increasing precedence: file, MULTIHOMED_* environment, flag.
var globalKeys = []struct{ key, flag, usage, def string }{
	{"log.level", "log-level", "log level: debug, info, warn, error", "info"},
	{"log.format", "log-format", "log format: text or json", "text"},
}

// EnvPrefix prefixes the environment variables that override global
// settings: MULTIHOMED_LOG_LEVEL, MULTIHOMED_LOG_FORMAT.
const EnvPrefix = "MULTIHOMED"

// AddFlags defines the global-setting flags (--log-level, --log-format) on
// fs. Pass the same set to Load or Parse.
func AddFlags(fs *pflag.FlagSet) {
	for _, g := range globalKeys {
		fs.String(g.flag, "", g.usage+" (default "+g.def+")")
	}
}

// Load reads and validates the YAML file at path. flags may be nil or a set
// prepared with AddFlags. On rejection the error is an *Error listing every
// problem; the file is not changed.
func Load(path string, flags *pflag.FlagSet) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return parse(path, data, flags, options{})
}

// Parse validates configuration text. Environment variables and flags are
// applied as in Load. Files named by password_file are read (see
// readSecretFile for what is accepted); text from an API caller goes through
// CheckRequest instead, which opens nothing.
func Parse(source string, data []byte, flags *pflag.FlagSet) (*Config, error) {
	return parse(source, data, flags, options{})
}

func parse(source string, data []byte, flags *pflag.FlagSet, opts options) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, &Error{Source: source, Problems: []Problem{{Message: "not valid YAML: " + oneLine(err.Error())}}}
	}
	var problems []Problem
	problems = append(problems, unknownKeys("", v.AllSettings(), reflect.TypeOf(rawConfig{}))...)
	for _, g := range globalKeys {
		v.SetDefault(g.key, g.def)
		_ = v.BindEnv(g.key, EnvPrefix+"_"+strings.ToUpper(strings.ReplaceAll(g.key, ".", "_")))
		if flags != nil {
			if f := flags.Lookup(g.flag); f != nil && f.Changed {
				v.Set(g.key, f.Value.String())
			}
		}
	}
	var raw rawConfig
	if err := v.Unmarshal(&raw); err != nil {
		problems = append(problems, decodeProblems(err)...)
	}
	cfg, vp, dropped := raw.validate(opts)
	problems = append(problems, vp...)
	if len(problems) > 0 || dropped > 0 {
		return nil, &Error{Source: source, Problems: capProblems(problems, dropped)}
	}
	return cfg, nil
}

// decodeProblems turns the decoder's joined error into one problem a line.
func decodeProblems(err error) []Problem {
	var out []Problem
	var joined interface{ Unwrap() []error }
	if errors.As(err, &joined) {
		for _, e := range joined.Unwrap() {
			out = append(out, decodeProblems(e)...)
		}
		return out
	}
	msg := oneLine(err.Error())
	msg = strings.TrimPrefix(msg, "decoding failed due to the following error(s): ")
	return []Problem{{Message: "wrong type: " + msg}}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// keysOf records the YAML keys of struct t and their types, in field
// order; a ",squash" field's keys count as t's own, as the decoder reads
// them.
func keysOf(t reflect.Type, fields map[string]reflect.Type, names *[]string) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("mapstructure")
		if tag == ",squash" {
			keysOf(f.Type, fields, names)
			continue
		}
		fields[tag] = f.Type
		*names = append(*names, tag)
	}
}

// unknownKeys walks the decoded YAML against the raw struct and reports each
// key the struct has no field for, suggesting the nearest known key.
func unknownKeys(path string, value any, t reflect.Type) []Problem {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Problem
	switch t.Kind() {
	case reflect.Struct:
		m, ok := value.(map[string]any)
		if !ok {
			return nil // a type error; the decoder reports it
		}
		fields := map[string]reflect.Type{}
		var names []string
		keysOf(t, fields, &names)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			p := join(path, k)
			if !ok {
				msg := "unknown key"
				if s := nearest(k, names); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				} else {
					msg += fmt.Sprintf("; known keys here: %s", strings.Join(names, ", "))
				}
				out = append(out, Problem{Path: p, Message: msg})
				continue
			}
			out = append(out, unknownKeys(p, m[k], ft)...)
		}
	case reflect.Slice:
		items, ok := value.([]any)
		if !ok {
			return nil
		}
		for i, it := range items {
			out = append(out, unknownKeys(fmt.Sprintf("%s[%d]", path, i), it, t.Elem())...)
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// nearest returns the candidate within edit distance 2 of s, if any.
func nearest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := editDistance(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
