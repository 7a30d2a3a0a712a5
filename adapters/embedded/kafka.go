package embedded

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

const (
	// KafkaLockFile is the file in a Kafka data directory on which a running
	// embedded broker holds an exclusive flock. kfake itself does not guard
	// its directory, and two clusters writing one log would corrupt it.
	KafkaLockFile = "LOCK"
	// KafkaBrokersFile is the file in a Kafka data directory that lists the
	// running embedded broker's addresses, one per line. kfake picks random
	// ports on each start, so CLI tools read this file (see [DiscoverKafka])
	// to find the server of a running single binary.
	KafkaBrokersFile = "brokers"
)

// Kafka is an in-process Kafka cluster (kfake) with one broker. It exists so
// the single binary and the tests get a real Kafka wire protocol without a
// JVM. Create it with [StartKafka].
type Kafka struct {
	cluster *kfake.Cluster
	dataDir string
	lock    *dirLock
	brokers []string

	closeOnce sync.Once
	closeErr  error
}

// StartKafka starts an in-process Kafka cluster with one broker on a random
// 127.0.0.1 port.
//
// With a non-empty dataDir the log, topic configs and consumer-group offsets
// are persisted there (kfake.DataDir) and reloaded on the next start; the
// directory is locked exclusively (flock on <dataDir>/LOCK, failing clearly if
// another process runs a broker on it) and the broker addresses are written to
// <dataDir>/brokers for CLI tools. With dataDir "" the cluster lives purely in
// memory and takes no lock (for tests).
//
// No topics are seeded: kfake ignores SeedTopics once saved state exists, so
// the application creates its topics itself (idempotently, tolerating
// TOPIC_ALREADY_EXISTS). kfake accepts topic configs such as retention.ms=-1,
// cleanup.policy=delete|compact and max.message.bytes at creation, and
// enforces retention, compaction and max.message.bytes. New topics created
// with the default partition count get one partition, as with Kafka's
// num.partitions default (kfake's own default is 10).
func StartKafka(dataDir string) (*Kafka, error) {
	k := &Kafka{}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(1),
		kfake.ClusterID("biosync-embedded"),
	}
	if dataDir != "" {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			return nil, fmt.Errorf("embedded kafka: data dir %q: %w", dataDir, err)
		}
		if err := os.MkdirAll(abs, 0o755); err != nil {
			return nil, fmt.Errorf("embedded kafka: create data dir: %w", err)
		}
		lock, err := lockFile(filepath.Join(abs, KafkaLockFile))
		if err != nil {
			if errors.Is(err, errLocked) {
				return nil, fmt.Errorf("embedded kafka: data dir %s is in use by another running BioSync/embedded Kafka (%v); stop it, or point this one at another data dir", abs, err)
			}
			return nil, fmt.Errorf("embedded kafka: lock data dir: %w", err)
		}
		k.dataDir, k.lock = abs, lock
		opts = append(opts, kfake.DataDir(abs))
	}

	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		_ = k.lock.unlock()
		return nil, fmt.Errorf("embedded kafka: start kfake: %w", err)
	}
	k.cluster = cluster
	k.brokers = cluster.ListenAddrs()

	if k.dataDir != "" {
		if err := writeFileAtomic(filepath.Join(k.dataDir, KafkaBrokersFile), []byte(strings.Join(k.brokers, "\n")+"\n")); err != nil {
			cluster.Close()
			_ = k.lock.unlock()
			return nil, fmt.Errorf("embedded kafka: write brokers file: %w", err)
		}
	}
	return k, nil
}

// Brokers returns the "host:port" bootstrap addresses of the cluster, for
// Kafka clients (franz-go, sarama).
func (k *Kafka) Brokers() []string {
	return append([]string(nil), k.brokers...)
}

// Close stops the broker, persists its state (with a data dir), removes the
// brokers file and releases the data-dir lock. It is safe to call twice.
func (k *Kafka) Close() error {
	k.closeOnce.Do(func() {
		var errs []error
		if k.dataDir != "" {
			if err := os.Remove(filepath.Join(k.dataDir, KafkaBrokersFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		k.cluster.Close()
		if err := k.lock.unlock(); err != nil {
			errs = append(errs, err)
		}
		k.closeErr = errors.Join(errs...)
	})
	return k.closeErr
}

// DiscoverKafka returns the broker addresses of the embedded Kafka currently
// running on dataDir (in this or another process), so CLI tools can reach the
// server of a running single binary. It fails if no server holds the data
// dir's lock, in which case a leftover brokers file is stale.
func DiscoverKafka(dataDir string) ([]string, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if !isLocked(filepath.Join(abs, KafkaLockFile)) {
		return nil, fmt.Errorf("no embedded Kafka is running on %s", abs)
	}
	b, err := os.ReadFile(filepath.Join(abs, KafkaBrokersFile))
	if err != nil {
		return nil, fmt.Errorf("embedded Kafka on %s: %w", abs, err)
	}
	var brokers []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" {
			brokers = append(brokers, line)
		}
	}
	if len(brokers) == 0 {
		return nil, fmt.Errorf("embedded Kafka on %s: empty %s file", abs, KafkaBrokersFile)
	}
	return brokers, nil
}

// writeFileAtomic writes data to path via a temporary file and rename, so a
// reader never sees a half-written file.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}
