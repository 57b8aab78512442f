// Package doclinks holds a test and nothing else: every link between the
// Markdown documents (docs/ and README.md) names a file that exists and,
// with #anchor, a heading of that file, anchored as GitHub renders it. A
// heading renamed without its links fails the test instead of silently
// leaving readers at the top of the page. It must never be imported.
package doclinks
