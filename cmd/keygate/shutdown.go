package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// maxShutdownDelay bounds KEYGATE_SHUTDOWN_DELAY: endpoint removal takes
// seconds, and a longer delay only postpones the kill at the end of the
// grace period.
const maxShutdownDelay = 5 * time.Minute

// shutdownDelay keeps the servers running for d after the first SIGTERM,
// while endpoints and load balancers stop sending new connections: the
// in-image stand-in for a preStop sleep on clusters without the sleep action
// (Kubernetes < 1.30) and with no shell in the image. A second SIGTERM or
// SIGINT ends it early. notReady turns readiness off; it runs once the second
// signal is being watched, so whoever sees /readyz fail may send it.
func shutdownDelay(d time.Duration, log *slog.Logger, notReady func()) {
	if d <= 0 {
		notReady()
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, syscall.SIGTERM, os.Interrupt)
	defer signal.Stop(again)
	notReady()
	log.Info("shutting down: still serving during the shutdown delay", "delay", d)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case s := <-again:
		log.Info("shutdown delay cut short", "signal", s.String())
	}
}
