package eventexport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/biosync/biosync/eventstore"
)

// Filter selects the events of an export. Empty lists and zero times select
// everything, so the zero Filter is the whole log.
type Filter struct {
	// Users keeps only these users' events; matched on the record key
	// before anything is decrypted.
	Users []uuid.UUID
	// Types keeps only these event types ("samples.pushed"); matched on the
	// event-type header before anything is decrypted.
	Types []string
	// From (inclusive) and To (exclusive) bound the recorded time. Zero is
	// unbounded. From picks each partition's start offset with
	// Log.OffsetForTime; To stops a partition at its first record at or
	// after To.
	From, To time.Time
}

// Options say how events are written and how long the export runs.
type Options struct {
	// Format is FormatJSONL (the default when empty) or FormatCSV.
	Format string
	// Pseudonymize replaces user ids and scrubs payloads (see the package
	// documentation for exactly what); it needs PseudonymKey.
	Pseudonymize bool
	// PseudonymKey keys the pseudonym HMAC (at least MinPseudonymKeyLen
	// bytes). The same key yields the same pseudonyms, so keep it as secret
	// and as long-lived as the exports that must be joinable.
	PseudonymKey []byte
	// Follow keeps reading new events after the snapshot until ctx ends
	// (tail); the export then ends without error.
	Follow bool
	// Progress, when set, is called with the number of records read so far
	// (kept or skipped) and the number in the snapshot, at the start, at most
	// every 100 ms, and at the end. In Follow mode total grows with the
	// records read past the snapshot. It runs on the exporting goroutine.
	Progress func(done, total int64)
}

// Output formats.
const (
	// FormatJSONL writes one JSON object per line with the payload embedded
	// as JSON: the format for jq and for loading into notebooks.
	FormatJSONL = "jsonl"
	// FormatCSV writes a fixed header row and one row per event with the
	// payload as a JSON string column: the format for spreadsheets and
	// COPY ... FROM.
	FormatCSV = "csv"
)

// MinPseudonymKeyLen is the shortest accepted pseudonym key (256 bits, the
// size of the HMAC-SHA256 output): a short or guessable key would let anyone
// holding a list of user ids recompute the pseudonyms.
const MinPseudonymKeyLen = 32

// Stats counts what an export did.
type Stats struct {
	// Events is the number of events written, erased ones included.
	Events int64
	// Skipped is the number of records read and left out by the user or
	// type filter.
	Skipped int64
	// Erased is the number of written events whose user was erased (no
	// payload).
	Erased int64
}

// progressEvery bounds how often Options.Progress is called.
const progressEvery = 100 * time.Millisecond

// Export reads log as described by f, decrypts the kept events with codec
// and writes them to w in o.Format. It returns when the snapshot is written
// (or, with o.Follow, when ctx ends). A record that does not decode (wrong
// master key, corruption) fails the export, as it halts a projector: a
// misconfiguration must not look like missing data. Erased users are not an
// error; they are written as erased.
func Export(ctx context.Context, log eventstore.Log, codec *eventstore.Codec, f Filter, o Options, w io.Writer) (Stats, error) {
	if !f.From.IsZero() && !f.To.IsZero() && !f.To.After(f.From) {
		return Stats{}, fmt.Errorf("eventexport: To (%s) must be after From (%s)", f.To.Format(time.RFC3339), f.From.Format(time.RFC3339))
	}
	out, err := newSink(w, o)
	if err != nil {
		return Stats{}, err
	}
	x := &exporter{codec: codec, filter: f, opts: o, out: out,
		users: map[uuid.UUID]bool{}, types: map[string]bool{}}
	for _, u := range f.Users {
		x.users[u] = true
	}
	for _, t := range f.Types {
		x.types[t] = true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	err = x.run(ctx, log)
	if o.Follow && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		err = nil // the end of a tail is the end of its context
	}
	if ferr := out.flush(); err == nil {
		err = ferr
	}
	x.progress(true)
	return x.stats, err
}

// exporter is the state of one Export call.
type exporter struct {
	codec  *eventstore.Codec
	filter Filter
	opts   Options
	out    *sink
	users  map[uuid.UUID]bool
	types  map[string]bool

	stats        Stats
	done, total  int64
	lastProgress time.Time
	// closing tracks subscriptions being closed. Closing one waits for the
	// broker's current fetch, so they are closed side by side, not one
	// partition after the other.
	closing sync.WaitGroup
}

// partition is one partition's reading state.
type partition struct {
	id   int32
	next int64 // next offset wanted; lower offsets (redeliveries) are dropped
	snap int64 // end of the snapshot (exclusive)
	// final: the partition ends at snap even in Follow mode (To reached).
	final bool
	sub   eventstore.Subscription
	head  *eventstore.Record // read but not yet written
	done  bool               // nothing more will be read
}

func (x *exporter) run(ctx context.Context, log eventstore.Log) error {
	ids, err := log.Partitions(ctx)
	if err != nil {
		return fmt.Errorf("eventexport: partitions: %w", err)
	}
	slices.Sort(ids)
	parts := make([]*partition, 0, len(ids))
	defer func() {
		for _, p := range parts {
			x.stop(p)
		}
		x.closing.Wait()
	}()
	for _, id := range ids {
		p, err := x.plan(ctx, log, id)
		if err != nil {
			return err
		}
		parts = append(parts, p)
		x.total += max(p.snap-p.next, 0)
		if p.next >= p.snap && (!x.opts.Follow || p.final) {
			p.done = true
			continue
		}
		if p.sub, err = log.Subscribe(ctx, id, p.next); err != nil {
			return fmt.Errorf("eventexport: read partition %d from %d: %w", id, p.next, err)
		}
	}
	if err := x.out.header(); err != nil {
		return err
	}
	x.progress(true)
	if err := x.snapshot(ctx, parts); err != nil {
		return err
	}
	if !x.opts.Follow {
		return nil
	}
	if err := x.out.flush(); err != nil {
		return err
	}
	return x.follow(ctx, parts)
}

// plan resolves a partition's offsets: start from From, snapshot end from
// the high-water mark now and from To.
func (x *exporter) plan(ctx context.Context, log eventstore.Log, id int32) (*partition, error) {
	p := &partition{id: id}
	var err error
	if p.snap, err = log.HighWater(ctx, id); err != nil {
		return nil, fmt.Errorf("eventexport: high water of partition %d: %w", id, err)
	}
	if !x.filter.From.IsZero() {
		if p.next, err = log.OffsetForTime(ctx, id, x.filter.From); err != nil {
			return nil, fmt.Errorf("eventexport: offset of %s in partition %d: %w", x.filter.From.Format(time.RFC3339), id, err)
		}
	}
	if !x.filter.To.IsZero() {
		end, err := log.OffsetForTime(ctx, id, x.filter.To)
		if err != nil {
			return nil, fmt.Errorf("eventexport: offset of %s in partition %d: %w", x.filter.To.Format(time.RFC3339), id, err)
		}
		if end < p.snap {
			// A record at or after To exists: the partition ends there.
			p.snap, p.final = end, true
		}
	}
	return p, nil
}

// snapshot writes every partition's records below its snapshot end, merged
// by (timestamp, partition, offset) comparing only the partitions' heads.
func (x *exporter) snapshot(ctx context.Context, parts []*partition) error {
	for {
		var best *partition
		for _, p := range parts {
			if p.done || p.next >= p.snap {
				continue
			}
			if p.head == nil {
				rec, err := x.pull(ctx, p)
				if err != nil {
					return err
				}
				if x.pastTo(rec) {
					x.stop(p)
					continue
				}
				p.head = &rec
			}
			if p.head.Position.Offset >= p.snap {
				// Past the snapshot (an offset gap): kept for Follow.
				p.next = p.snap
				continue
			}
			if best == nil || before(p.head, best.head) {
				best = p
			}
		}
		if best == nil {
			break
		}
		rec := *best.head
		best.head, best.next = nil, rec.Position.Offset+1
		if err := x.handle(ctx, rec); err != nil {
			return err
		}
	}
	for _, p := range parts {
		if !p.done && (!x.opts.Follow || p.final) {
			x.stop(p)
		}
	}
	return nil
}

// before orders heads: record timestamp, then partition, then offset.
func before(a, b *eventstore.Record) bool {
	if !a.Timestamp.Equal(b.Timestamp) {
		return a.Timestamp.Before(b.Timestamp)
	}
	if a.Position.Partition != b.Position.Partition {
		return a.Position.Partition < b.Position.Partition
	}
	return a.Position.Offset < b.Position.Offset
}

// pastTo reports whether rec is at or after Filter.To.
func (x *exporter) pastTo(rec eventstore.Record) bool {
	return !x.filter.To.IsZero() && !rec.Timestamp.Before(x.filter.To)
}

// stop ends reading a partition; its subscription closes in the
// background (run waits for all of them before returning).
func (x *exporter) stop(p *partition) {
	p.done, p.head = true, nil
	if sub := p.sub; sub != nil {
		x.closing.Go(func() { _ = sub.Close() })
		p.sub = nil
	}
}

// pull returns p's next record at or after p.next.
func (x *exporter) pull(ctx context.Context, p *partition) (eventstore.Record, error) {
	for {
		select {
		case <-ctx.Done():
			return eventstore.Record{}, ctx.Err()
		case err := <-p.sub.Errors():
			return eventstore.Record{}, fmt.Errorf("eventexport: read partition %d: %w", p.id, err)
		case rec, ok := <-p.sub.Records():
			if !ok {
				if ctx.Err() != nil {
					return eventstore.Record{}, ctx.Err()
				}
				return eventstore.Record{}, fmt.Errorf("eventexport: partition %d stream closed at offset %d", p.id, p.next)
			}
			if rec.Position.Offset < p.next {
				continue
			}
			return rec, nil
		}
	}
}

// follow writes records past the snapshot as they arrive, until ctx ends or
// every partition has passed To.
func (x *exporter) follow(ctx context.Context, parts []*partition) error {
	type item struct {
		p   *partition
		rec eventstore.Record
		err error
	}
	items := make(chan item)
	live := 0
	for _, p := range parts {
		if p.done {
			continue
		}
		live++
		go func(p *partition, sub eventstore.Subscription, head *eventstore.Record) {
			send := func(it item) bool {
				select {
				case items <- it:
					return true
				case <-ctx.Done():
					return false
				}
			}
			if head != nil && !send(item{p: p, rec: *head}) {
				return
			}
			for {
				select {
				case <-ctx.Done():
					return
				case err := <-sub.Errors():
					send(item{p: p, err: fmt.Errorf("eventexport: read partition %d: %w", p.id, err)})
					return
				case rec, ok := <-sub.Records():
					if !ok {
						return // closed by stop (To reached) or by ctx
					}
					if !send(item{p: p, rec: rec}) {
						return
					}
				}
			}
		}(p, p.sub, p.head)
		p.head = nil
	}
	for live > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case it := <-items:
			if it.err != nil {
				return it.err
			}
			p := it.p
			if p.done || it.rec.Position.Offset < p.next {
				continue
			}
			if x.pastTo(it.rec) {
				x.stop(p)
				live--
				continue
			}
			p.next = it.rec.Position.Offset + 1
			if err := x.handle(ctx, it.rec); err != nil {
				return err
			}
			if err := x.out.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// handle filters, decrypts and writes one record.
func (x *exporter) handle(ctx context.Context, rec eventstore.Record) error {
	x.done++
	if x.done > x.total {
		x.total = x.done
	}
	defer x.progress(false)
	if !x.keepRouting(rec) {
		x.stats.Skipped++
		return nil
	}
	s, err := x.codec.Decode(ctx, rec)
	if err != nil {
		return fmt.Errorf("eventexport: %w", err)
	}
	// The envelope is the truth; the key and headers were a shortcut.
	if (len(x.users) > 0 && !x.users[s.UserID]) || (len(x.types) > 0 && !x.types[s.Type]) {
		x.stats.Skipped++
		return nil
	}
	if err := x.out.write(s); err != nil {
		return err
	}
	x.stats.Events++
	if s.Erased {
		x.stats.Erased++
	}
	return nil
}

// keepRouting applies the user and type filters to the record key and
// headers only, so nothing of a filtered-out user is ever decrypted. A
// record without a type header cannot be ruled out here; the envelope
// decides after decryption (its user already passed the user filter).
func (x *exporter) keepRouting(rec eventstore.Record) bool {
	if len(x.users) > 0 {
		raw := rec.Key
		if len(raw) == 0 {
			raw, _ = header(rec, eventstore.HeaderUserID)
		}
		u, err := uuid.ParseBytes(raw)
		if err != nil || !x.users[u] {
			return false
		}
	}
	if len(x.types) > 0 {
		if t, ok := header(rec, eventstore.HeaderEventType); ok && !x.types[string(t)] {
			return false
		}
	}
	return true
}

// header returns the value of the named header and whether it is there.
func header(rec eventstore.Record, name string) ([]byte, bool) {
	for _, h := range rec.Headers {
		if h.Key == name {
			return h.Value, true
		}
	}
	return nil, false
}

// progress reports to Options.Progress at most every progressEvery, or now
// when force is set.
func (x *exporter) progress(force bool) {
	if x.opts.Progress == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(x.lastProgress) < progressEvery {
		return
	}
	x.lastProgress = now
	x.opts.Progress(x.done, x.total)
}
