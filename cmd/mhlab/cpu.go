package main

import (
	"context"
	"time"
)

func benchCPU(ctx context.Context, daemon string, window time.Duration, verbose bool) error {
	return nil
}
