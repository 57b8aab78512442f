package manpage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestCommandSection writes the pages of a small tree in section 5: the
// header carries that section, each visible command has its page, and the
// hidden generator has none.
func TestCommandSection(t *testing.T) {
	root := &cobra.Command{Use: "tool"}
	sub := &cobra.Command{Use: "sub", Short: "a subcommand", Run: func(*cobra.Command, []string) {}}
	sub.Flags().String("flavour", "", "which one")
	root.AddCommand(sub, Command(root, "5"))
	dir := t.TempDir()
	root.SetArgs([]string{"gen-man", dir})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	page, err := os.ReadFile(filepath.Join(dir, "tool-sub.5"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(page), `.TH "TOOL-SUB" "5"`) || !strings.Contains(string(page), `\fB--flavour\fP`) {
		t.Errorf("tool-sub.5 lacks the section 5 header or --flavour:\n%s", page)
	}
	if strings.Contains(string(page), "Auto generated") {
		t.Errorf("tool-sub.5 carries cobra's footer:\n%s", page)
	}
	if _, err := os.Stat(filepath.Join(dir, "tool-gen-man.5")); err == nil {
		t.Error("a page for the hidden gen-man command")
	}
}
