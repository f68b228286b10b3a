// Command event_dispatcher receives JSON events over HTTP POST and broadcasts
// them to every connected listener as Server-Sent Events. Run it with -help
// for its flags.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/SRGSSR/pillarbox-event-dispatcher/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "event_dispatcher:", err)
		os.Exit(1)
	}
}
