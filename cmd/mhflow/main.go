package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/multihomed/multihomed/internal/flowmeter"
)

func main() {
	bind := flag.String("bind", "", "local address:port to send from and receive on (required)")
	peer := flag.String("peer", "", "the other host's address:port (required)")
	interval := flag.Duration("interval", time.Millisecond, "time between packets")
	dur := flag.Duration("for", 20*time.Second, "how long to send")
	linger := flag.Duration("linger", 2*time.Second, "how long to keep receiving after sending stops")
	flag.Parse()
	if err := run(*bind, *peer, *interval, *dur, *linger); err != nil {
		fmt.Fprintln(os.Stderr, "mhflow:", err)
		os.Exit(1)
	}
}

func run(bind, peer string, interval, dur, linger time.Duration) error {
	if bind == "" || peer == "" {
		return fmt.Errorf("--bind and --peer are required, such as --bind '[2001:db8:9000:1::10]:9' --peer '[2001:db8:face:1::10]:9'")
	}
	if interval <= 0 || dur <= 0 {
		return fmt.Errorf("--interval and --for must be positive")
	}
	to, err := net.ResolveUDPAddr("udp", peer)
	if err != nil || to.IP == nil {
		return fmt.Errorf("--peer %q: want an IP literal and port: %v", peer, err)
	}
	conn, err := net.ListenPacket("udp", bind)
	if err != nil {
		return fmt.Errorf("--bind %q: %w", bind, err)
	}
	r := flowmeter.NewReceiver()
	done := make(chan struct{})
	go func() { r.Run(conn); close(done) }()
	ctx, cancel := context.WithTimeout(context.Background(), dur)
	defer cancel()
	flowmeter.Send(ctx, conn, to, interval, nil)
	time.Sleep(linger) // late packets still in flight
	conn.Close()
	<-done
	fmt.Printf("mhflow: received from %s: %s\n", to, r.Report(0, r.Highest(), interval))
	return nil
}
