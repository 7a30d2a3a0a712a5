package embedded

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// KafkaDir is the embedded Kafka's directory inside the data dir; the
// lock on it tells whether an embedded default is running there.
const KafkaDir = "kafka"

// EndpointsFile, in the data dir, tells CLI tools where the in-process
// servers of a running embedded default listen (their ports are random on
// every start).
const EndpointsFile = "endpoints.json"

// Endpoints are the addresses of a running embedded default's servers, as
// kept in [EndpointsFile]. The JSON field names are the file format: CLI
// tools of another version read it.
type Endpoints struct {
	KafkaBrokers []string `json:"kafka_brokers"`
	DatabaseURL  string   `json:"database_url"`
	RedisURL     string   `json:"redis_url"`
}

// WriteEndpoints records ep in dataDir (mode 0600: the database URL may
// carry a password), replacing the file atomically so a reader never sees
// half of it.
func WriteEndpoints(dataDir string, ep Endpoints) error {
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dataDir, EndpointsFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dataDir, EndpointsFile))
}

// RemoveEndpoints deletes the file when the embedded default stops.
func RemoveEndpoints(dataDir string) error {
	return os.Remove(filepath.Join(dataDir, EndpointsFile))
}

// ReadEndpoints returns the endpoints of the embedded default running on
// dataDir: the file must exist and name Kafka and PostgreSQL, and the
// embedded Kafka's lock on <dataDir>/[KafkaDir] must be held by a live process
// (otherwise the file is a leftover of a crash).
func ReadEndpoints(dataDir string) (Endpoints, bool) {
	if _, err := DiscoverKafka(filepath.Join(dataDir, KafkaDir)); err != nil {
		return Endpoints{}, false
	}
	b, err := os.ReadFile(filepath.Join(dataDir, EndpointsFile))
	if err != nil {
		return Endpoints{}, false
	}
	var ep Endpoints
	if json.Unmarshal(b, &ep) != nil || len(ep.KafkaBrokers) == 0 || ep.DatabaseURL == "" {
		return Endpoints{}, false
	}
	return ep, true
}
