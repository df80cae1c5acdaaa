package boot

import (
	"context"
	"testing"
	"time"
)

func TestEchoCounter(t *testing.T) {
	var c EchoCounter
	if got := c.Received(); got != 0 {
		t.Fatalf("zero value Received() = %d, want 0", got)
	}

	time.AfterFunc(20*time.Millisecond, func() { c.Add(3) })
	if !c.WaitBeyond(context.Background(), 0, time.Second) {
		t.Fatal("WaitBeyond(0) = false after 3 bytes arrived")
	}
	if got := c.Received(); got != 3 {
		t.Errorf("Received() = %d, want 3", got)
	}

	start := time.Now()
	if c.WaitBeyond(context.Background(), 3, 50*time.Millisecond) {
		t.Error("WaitBeyond(3) = true with no new bytes")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("WaitBeyond returned after %s, before its 50ms timeout", took)
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if c.WaitBeyond(ctx, 3, time.Minute) {
		t.Error("WaitBeyond = true after the context was cancelled")
	}
}
