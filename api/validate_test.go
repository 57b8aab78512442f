package api

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/multihomed/multihomed/api/v1"
	"github.com/multihomed/multihomed/config"
)

// stubValidator answers Validate with problems problems of msgLen bytes,
// after waiting for gate when it is set.
type stubValidator struct {
	*fakeConfig
	problems, msgLen int
	entered          chan struct{}
	gate             chan struct{}
}

func (s *stubValidator) Validate([]byte) ([]config.Problem, error) {
	if s.entered != nil {
		s.entered <- struct{}{}
		<-s.gate
	}
	ps := make([]config.Problem, s.problems)
	msg := strings.Repeat("x", s.msgLen)
	for i := range ps {
		ps[i] = config.Problem{Path: "site.prefixes", Message: msg}
	}
	return nil, &config.Error{Source: "request", Problems: ps}
}

// TestValidateConfigBounded (#13): the answer to a config with very many
// problems is at most MaxProblems entries of bounded size plus a count of
// the rest (the old code sent all 1,999,000 problems of 2,000 copies of
// one prefix), and text above MaxConfigLen (the old limit was 1 MiB) is
// refused before validation.
func TestValidateConfigBounded(t *testing.T) {
	stub := &stubValidator{fakeConfig: newFakeConfig(t), problems: 1_999_000, msgLen: 4096}
	svc := NewServer(Options{Controller: newFakeController(), Config: stub, Logger: slogDiscard()})
	resp, err := svc.ValidateConfig(context.Background(), &apiv1.ValidateConfigRequest{Config: "site: {}"})
	if err != nil {
		t.Fatal(err)
	}
	ps := resp.GetProblems()
	if len(ps) != MaxProblems+1 {
		t.Fatalf("%d problems in the answer; want %d and a count", len(ps), MaxProblems)
	}
	for _, p := range ps {
		if len(p.GetMessage()) > MaxProblemLen+40 {
			t.Fatalf("problem message of %d bytes", len(p.GetMessage()))
		}
	}
	if want := fmt.Sprintf("and %d more", 1_999_000-MaxProblems); !strings.Contains(ps[MaxProblems].GetMessage(), want) {
		t.Errorf("last entry %q; want %q", ps[MaxProblems].GetMessage(), want)
	}
	_, err = svc.ValidateConfig(context.Background(), &apiv1.ValidateConfigRequest{Config: strings.Repeat("#", 1<<20)})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("1 MiB config: %v; want InvalidArgument", err)
	}
	// The same bound on a refused reload's detail.
	st, _ := status.FromError(statusOf(&config.Error{Source: "f", Problems: make([]config.Problem, 5000)}))
	if n := len(st.Details()); n != 1 || len(fmt.Sprint(st.Details()[0])) > 64<<10 || len(st.Message()) > 200 {
		t.Errorf("reload status: %d details, message %d bytes", n, len(st.Message()))
	}
}

// TestValidateConfigConcurrency (#13): at most MaxConcurrentValidations
// run at once; the next is refused at once, not queued.
func TestValidateConfigConcurrency(t *testing.T) {
	stub := &stubValidator{fakeConfig: newFakeConfig(t), problems: 1, entered: make(chan struct{}), gate: make(chan struct{})}
	svc := NewServer(Options{Controller: newFakeController(), Config: stub, Logger: slogDiscard()})
	done := make(chan error, MaxConcurrentValidations)
	for range MaxConcurrentValidations {
		go func() {
			_, err := svc.ValidateConfig(context.Background(), &apiv1.ValidateConfigRequest{Config: "x"})
			done <- err
		}()
		<-stub.entered
	}
	_, err := svc.ValidateConfig(context.Background(), &apiv1.ValidateConfigRequest{Config: "x"})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("validation beyond the limit: %v; want ResourceExhausted", err)
	}
	close(stub.gate)
	for range MaxConcurrentValidations {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	stub.entered = nil
	if _, err := svc.ValidateConfig(context.Background(), &apiv1.ValidateConfigRequest{Config: "x"}); err != nil {
		t.Errorf("validation after the others finished: %v", err)
	}
}
