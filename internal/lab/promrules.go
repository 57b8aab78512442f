package lab

import (
	"fmt"
	"time"

	"github.com/prometheus/common/model"
	"go.yaml.in/yaml/v3"
)

// ShortenFor returns a copy of a Prometheus rule file (such as
// docs/prometheus/rules.yml) in which every alerting rule's `for:` longer
// than limit is limit, and the names of the alerts it shortened. Nothing
// else changes, so a lab test exercises the shipped expressions, labels and
// annotations without waiting minutes: the copy is derived from the file,
// never written by hand, and follows it when it changes.
func ShortenFor(rules []byte, limit time.Duration) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(rules, &doc); err != nil {
		return nil, nil, fmt.Errorf("lab: rule file: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil, nil, fmt.Errorf("lab: rule file is empty")
	}
	groups := mappingValue(doc.Content[0], "groups")
	if groups == nil || groups.Kind != yaml.SequenceNode {
		return nil, nil, fmt.Errorf("lab: rule file has no groups list")
	}
	var shortened []string
	for _, g := range groups.Content {
		rs := mappingValue(g, "rules")
		if rs == nil {
			continue
		}
		for _, r := range rs.Content {
			f := mappingValue(r, "for")
			if f == nil {
				continue
			}
			d, err := model.ParseDuration(f.Value)
			if err != nil {
				return nil, nil, fmt.Errorf("lab: rule %s: for: %w", ruleName(r), err)
			}
			if time.Duration(d) > limit {
				f.Value = model.Duration(limit).String()
				shortened = append(shortened, ruleName(r))
			}
		}
	}
	out, err := yaml.Marshal(&doc)
	if err != nil {
		return nil, nil, fmt.Errorf("lab: rule file: %w", err)
	}
	return out, shortened, nil
}

// mappingValue returns the value node of key in a YAML mapping, or nil.
func mappingValue(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// ruleName is an alerting rule's name, or a recording rule's.
func ruleName(r *yaml.Node) string {
	for _, k := range []string{"alert", "record"} {
		if v := mappingValue(r, k); v != nil {
			return v.Value
		}
	}
	return "(unnamed)"
}
