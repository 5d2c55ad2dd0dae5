package ldapidentity

import (
	"context"
	"net"
	"time"
)

// dialer returns a dialer bounded by timeout; ctx's deadline, if sooner, wins.
func dialer(ctx context.Context, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	if dl, ok := ctx.Deadline(); ok {
		d.Deadline = dl
	}
	return d
}
