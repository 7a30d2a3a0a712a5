package testbackend

import (
	"context"
	"errors"
	"time"

	"github.com/biosync/biosync/domain"
	"github.com/biosync/biosync/eventstore"
)

// AppendBudget bounds Append's retries: far above any stall of a loaded
// test machine, far below a test's timeout.
const AppendBudget = 30 * time.Second

// Append appends e for a test the way a sender treats a 503: an append that
// answered "unavailable" is sent again with the same event id, for up to
// AppendBudget. The command side's append deadline is deliberately short
// (Kafka down must answer 503 within about two seconds), so a loaded test
// machine (a CI run, parallel packages, kfake in process) can time out an
// append that would have landed; a test that appends thousands of events
// must not fail on that. A record that lands twice is a redelivery, which
// the read models absorb by their natural keys: use Append only where the
// test's checks are by natural keys, not where it counts records in the log.
// Any other error, or the context ending, is returned at once.
func Append(ctx context.Context, app eventstore.Appender, e eventstore.Event) (eventstore.Position, error) {
	deadline := time.Now().Add(AppendBudget)
	wait := 50 * time.Millisecond
	for {
		pos, err := app.Append(ctx, e)
		if err == nil || !errors.Is(err, domain.ErrUnavailable) || ctx.Err() != nil || time.Now().After(deadline) {
			return pos, err
		}
		select {
		case <-ctx.Done():
			return pos, err
		case <-time.After(wait):
		}
		wait = min(2*wait, 500*time.Millisecond)
	}
}
