// Package embedded runs BioSync's backing services inside (or next to) the
// BioSync process, so that the single binary works with no infrastructure at
// all (the "embedded default") and so that tests on a fresh machine have
// real-protocol backends without Docker.
//
// Three servers are provided, each speaking the real wire protocol, so the
// production adapters talk to them exactly as they talk to the real services:
//
//   - Kafka: an in-process github.com/twmb/franz-go/pkg/kfake cluster
//     ([StartKafka]). With a data directory the log, topic configs and
//     consumer-group offsets survive restarts. kfake writes through the OS
//     page cache and only fsyncs on segment roll and shutdown (like real
//     Kafka's default), so an OS crash or power loss — not a process crash —
//     can lose recently acknowledged events.
//   - Redis: an in-process github.com/alicebob/miniredis/v2 server
//     ([StartRedis]); it is always ephemeral.
//   - PostgreSQL: a private cluster started from the locally installed
//     PostgreSQL binaries ([StartPostgres]) on a free loopback port. There is
//     no in-process PostgreSQL, and the read models rely on real PostgreSQL
//     semantics, so a child process is the smallest faithful stand-in.
//
// Every server listens on 127.0.0.1 only.
//
// # Running as root
//
// PostgreSQL's initdb and postgres refuse to run as root. When the BioSync
// process is root, StartPostgres runs them as the "postgres" OS user. If that
// user cannot reach the requested data directory (for example because it is
// under /root, which is mode 0700), the cluster is placed in a postgres-owned
// directory under os.TempDir() named after a hash of the requested path
// (biosync-pg-<hash>), so restarts find the same cluster, and a pointer file
// named [PostgresLocationFile] is written into the requested directory. The
// temporary directory may be cleaned by the OS (tmpfiles, reboot on tmpfs):
// for durable data as root, choose a data directory the postgres user can
// traverse (e.g. under /var/lib).
package embedded
