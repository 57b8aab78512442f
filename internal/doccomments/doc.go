// Package doccomments holds a test and nothing else: every package of the
// repository has a doc.go that says its job, and every exported name has
// a doc comment (DESIGN.md's rule, checked instead of remembered).
// Generated code is left out. It must never be imported.
package doccomments
