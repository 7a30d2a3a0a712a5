package embedded

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Redis is an in-process Redis server (miniredis). It backs the cache, the
// rate limiter (miniredis runs the Lua scripts go-redis/redis_rate uses),
// the delivery dedup fast path and the Idempotency-Key store in the single
// binary and in tests. Create it with [StartRedis].
//
// miniredis keeps everything in memory and its TTLs only move when told
// to. With a snapshot file (the embedded default passes one under its data
// dir) the server behaves like a Redis with RDB snapshots: TTLs run on the
// wall clock, and the data is written to the file every snapshotInterval
// and on Close, then read back at the next start, so stored
// Idempotency-Key answers and remembered deliveries survive a restart (a
// kill -9 loses at most the last interval; deliveries are covered by their
// durable record in PostgreSQL). Without one (tests) it is memory only and TTLs move when a test
// fast-forwards them.
type Redis struct {
	srv      *miniredis.Miniredis
	snapshot string
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	lastTick time.Time
}

// snapshotInterval is how often a persistent server writes its snapshot
// and advances its TTLs. Both walk every key: at 1 s they took 15 % of
// the server's CPU at ingest saturation (one remembered delivery per push),
// at 5 s about a fifth of that.
const snapshotInterval = 5 * time.Second

// StartRedis starts an in-process Redis server on a random 127.0.0.1 port.
// snapshot names the file its data is kept in across restarts; "" keeps it
// in memory only.
func StartRedis(snapshot string) (*Redis, error) {
	srv := miniredis.NewMiniRedis()
	r := &Redis{srv: srv, snapshot: snapshot}
	if snapshot != "" {
		if err := r.load(); err != nil {
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
	}
	if err := srv.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	if snapshot != "" {
		r.stop, r.done, r.lastTick = make(chan struct{}), make(chan struct{}), time.Now()
		go r.run()
	}
	return r, nil
}

// run advances TTLs by the time that passed and writes the snapshot, every
// snapshotInterval until Close.
func (r *Redis) run() {
	defer close(r.done)
	t := time.NewTicker(snapshotInterval)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
			r.tick()
		}
	}
}

func (r *Redis) tick() {
	now := time.Now()
	if d := now.Sub(r.lastTick); d > 0 {
		r.srv.FastForward(d)
	}
	r.lastTick = now
	_ = r.save() // the next tick tries again; Close reports a failure
}

// snapshotFile is the form of the snapshot: each key with its type, value
// and remaining time to live.
type snapshotFile struct {
	Version int           `json:"version"`
	Keys    []snapshotKey `json:"keys"`
}

type snapshotKey struct {
	Key    string             `json:"k"`
	Type   string             `json:"t"`
	TTLms  int64              `json:"ttl_ms,omitempty"`
	String string             `json:"s,omitempty"`
	Hash   map[string]string  `json:"h,omitempty"`
	Set    []string           `json:"set,omitempty"`
	List   []string           `json:"l,omitempty"`
	ZSet   map[string]float64 `json:"z,omitempty"`
}

// save writes every key to the snapshot file atomically (a temporary file
// renamed over the old one, so a crash mid-write leaves the last snapshot).
func (r *Redis) save() error {
	out := snapshotFile{Version: 1}
	for _, k := range r.srv.Keys() {
		sk := snapshotKey{Key: k, Type: r.srv.Type(k), TTLms: r.srv.TTL(k).Milliseconds()}
		var err error
		switch sk.Type {
		case "string":
			sk.String, err = r.srv.Get(k)
		case "hash":
			var fields []string
			if fields, err = r.srv.HKeys(k); err == nil {
				sk.Hash = make(map[string]string, len(fields))
				for _, f := range fields {
					sk.Hash[f] = r.srv.HGet(k, f)
				}
			}
		case "set":
			sk.Set, err = r.srv.Members(k)
		case "list":
			sk.List, err = r.srv.List(k)
		case "zset":
			var members []string
			if members, err = r.srv.ZMembers(k); err == nil {
				sk.ZSet = make(map[string]float64, len(members))
				for _, m := range members {
					if sk.ZSet[m], err = r.srv.ZScore(k, m); err != nil {
						break
					}
				}
			}
		default:
			continue // streams and others: nothing of ours uses them
		}
		if err != nil {
			continue // the key changed type or vanished while we read it
		}
		out.Keys = append(out.Keys, sk)
	}
	raw, err := json.Marshal(out)
	if err != nil {
		return err
	}
	tmp := r.snapshot + ".tmp"
	if err := os.WriteFile(tmp, raw, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.snapshot)
}

// load restores the snapshot file, if there is one.
func (r *Redis) load() error {
	raw, err := os.ReadFile(r.snapshot)
	if errors.Is(err, fs.ErrNotExist) {
		return os.MkdirAll(filepath.Dir(r.snapshot), 0o700)
	}
	if err != nil {
		return err
	}
	var in snapshotFile
	if err := json.Unmarshal(raw, &in); err != nil {
		return fmt.Errorf("snapshot %s is unreadable (delete it to start empty): %w", r.snapshot, err)
	}
	for _, k := range in.Keys {
		switch k.Type {
		case "string":
			err = r.srv.Set(k.Key, k.String)
		case "hash":
			for f, v := range k.Hash {
				r.srv.HSet(k.Key, f, v)
			}
		case "set":
			_, err = r.srv.SetAdd(k.Key, k.Set...)
		case "list":
			_, err = r.srv.Push(k.Key, k.List...)
		case "zset":
			for m, score := range k.ZSet {
				if _, err = r.srv.ZAdd(k.Key, score, m); err != nil {
					break
				}
			}
		}
		if err != nil {
			return fmt.Errorf("snapshot key %q: %w", k.Key, err)
		}
		if k.TTLms > 0 {
			r.srv.SetTTL(k.Key, time.Duration(k.TTLms)*time.Millisecond)
		}
	}
	return nil
}

// URL returns the server's address as a go-redis URL,
// "redis://127.0.0.1:<port>/0".
func (r *Redis) URL() string {
	return fmt.Sprintf("redis://%s/0", r.srv.Addr())
}

// Server exposes the miniredis instance, so tests can fast-forward TTLs or
// inspect keys directly.
func (r *Redis) Server() *miniredis.Miniredis { return r.srv }

// Close writes a last snapshot (when the server has one) and stops the
// server. It is safe to call twice.
func (r *Redis) Close() error {
	var err error
	r.once.Do(func() {
		if r.stop != nil {
			close(r.stop)
			<-r.done
			r.tick()
			if err = r.save(); err != nil {
				err = fmt.Errorf("embedded redis snapshot: %w", err)
			}
		}
		r.srv.Close()
	})
	return err
}
