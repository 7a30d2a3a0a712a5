package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// doFunc performs one complete request (send, read the whole answer) and
// returns nil when it succeeded. seq numbers the requests of a phase.
type doFunc func(ctx context.Context, seq uint64) error

// loadResult is what one load phase measured inside its window.
type loadResult struct {
	OK       int             // successful requests completed in the window
	Errors   int             // failed requests completed in the window
	Window   time.Duration   // measurement window (warm-up excluded)
	Lat      []time.Duration // latency of each successful request
	FirstErr string          // the first failure, for the report
	Offered  float64         // open loop: scheduled requests per second
}

// rate is successful requests per second in the window.
func (r loadResult) rate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.OK) / r.Window.Seconds()
}

// newClient returns an HTTP/1.1 keep-alive client for load generation:
// maxConns bounds connections per host and as many stay idle, so no
// request pays for a new connection in steady state. Open loops use the
// same bound as the saturation phases (like wrk2's fixed connections): a
// request that finds every connection busy waits for one, and that wait is
// part of its latency.
func newClient(maxConns int) *http.Client {
	idle := maxConns
	return &http.Client{
		Timeout: 15 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        idle,
			MaxIdleConnsPerHost: idle,
			MaxConnsPerHost:     maxConns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			ForceAttemptHTTP2:   false,
		},
	}
}

// closedLoop runs conc workers, each sending its next request as soon as
// the previous one completed, for warmup+dur; requests completing inside
// the last dur are counted (the saturation throughput, like wrk).
func closedLoop(ctx context.Context, conc int, warmup, dur time.Duration, do doFunc) loadResult {
	start := time.Now()
	mStart, end := start.Add(warmup), start.Add(warmup+dur)
	ctx, cancel := context.WithDeadline(ctx, end.Add(15*time.Second))
	defer cancel()
	var (
		seq atomic.Uint64
		mu  sync.Mutex
		res = loadResult{Window: dur}
		wg  sync.WaitGroup
	)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			ok, errs, first := 0, 0, ""
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) {
					break
				}
				err := do(ctx, seq.Add(1))
				t1 := time.Now()
				if t1.Before(mStart) || t1.After(end) {
					continue
				}
				if err == nil {
					ok++
					lat = append(lat, t1.Sub(t0))
				} else {
					errs++
					if first == "" {
						first = err.Error()
					}
				}
			}
			mu.Lock()
			res.OK += ok
			res.Errors += errs
			res.Lat = append(res.Lat, lat...)
			if res.FirstErr == "" {
				res.FirstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return res
}

// openLoop schedules requests at a fixed rate for warmup+dur and hands
// them to conc workers (wrk2's model: fixed connections, constant
// throughput). Latency is measured from each request's scheduled start, so
// a request that waits for a free worker because the server stalled counts
// that wait: no coordinated omission. Requests scheduled in the last dur
// are counted.
func openLoop(ctx context.Context, rate float64, conc int, warmup, dur time.Duration, do doFunc) loadResult {
	res := loadResult{Window: dur, Offered: rate}
	if rate <= 0 {
		return res
	}
	total := int((warmup + dur).Seconds() * rate)
	start := time.Now()
	at := func(i int) time.Time { return start.Add(time.Duration(float64(i) * float64(time.Second) / rate)) }
	firstCounted := int(warmup.Seconds() * rate)
	ctx, cancel := context.WithDeadline(ctx, start.Add(warmup+dur+15*time.Second))
	defer cancel()
	type outcome struct {
		lat  time.Duration
		err  error
		done bool
	}
	outs := make([]outcome, total)
	jobs := make(chan int, total) // never blocks the scheduler
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				err := do(ctx, uint64(i+1))
				outs[i] = outcome{lat: time.Since(at(i)), err: err, done: true}
			}
		}()
	}
	for i := 0; i < total && ctx.Err() == nil; {
		now := time.Now()
		for i < total && !at(i).After(now) {
			jobs <- i
			i++
		}
		if i < total {
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(at(i))):
			}
		}
	}
	close(jobs)
	wg.Wait()
	for i := firstCounted; i < total; i++ {
		o := outs[i]
		switch {
		case !o.done:
			continue
		case o.err == nil:
			res.OK++
			res.Lat = append(res.Lat, o.lat)
		default:
			res.Errors++
			if res.FirstErr == "" {
				res.FirstErr = o.err.Error()
			}
		}
	}
	return res
}
