package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/biosync/biosync/adapters/httpapi"
	"github.com/biosync/biosync/adapters/kafka"
	"github.com/biosync/biosync/adapters/logbus"
	"github.com/biosync/biosync/adapters/postgres"
	"github.com/biosync/biosync/adapters/providers/oura"
	"github.com/biosync/biosync/commands"
	"github.com/biosync/biosync/commands/connections"
	"github.com/biosync/biosync/domain/provider"
)

// fetchConsumer names the fetch worker's offsets in process_offsets.
const fetchConsumer = "providers.fetch"

// connectionService builds provider connections over the platform: one
// client per configured provider (a client id is what configures one),
// tokens sealed with the user's data key, redirect URIs under publicURL.
func (p *platform) connectionService(publicURL string) (*connections.Service, error) {
	clients := map[provider.Name]connections.Client{}
	if p.cfg.Oura.ClientID != "" {
		c, err := oura.New(p.cfg.Oura)
		if err != nil {
			return nil, err
		}
		clients[provider.Oura] = c
		if p.cfg.Oura.VerificationToken == "" {
			p.log.Warn("BIOSYNC_OURA_VERIFICATION_TOKEN is not set: Oura's webhook handshake will be refused")
		}
	}
	return connections.New(connections.Deps{
		Log: p.appender, Store: postgres.NewConnections(p.pool), Sealer: p.codec.Keys(), Clients: clients,
		PublicURL: publicURL, Backfill: p.cfg.ProviderBackfill,
		Envelope: commands.Envelope{CorrelationID: httpapi.CorrelationID}, Logger: p.log, Data: p.cmds.samples,
	})
}

// runFetchWorker runs the provider fetch worker (watermill's Router over
// the event log, see commands/connections.Worker) until ctx ends. It has
// a Log (Kafka client) of its own, like each projector.
func (p *platform) runFetchWorker(ctx context.Context, svc *connections.Service) error {
	l, err := kafka.NewLog(p.kcfg)
	if err != nil {
		return err
	}
	defer l.Close()
	offsets := postgres.NewProcessOffsets(p.pool)
	defer offsets.Close()
	sub := &logbus.Subscriber{
		Log: l, Codec: p.codec, Offsets: offsets, Owners: offsets, Consumer: fetchConsumer, Logger: p.log,
		Types: map[string]bool{provider.EventNotified: true, provider.EventConnectionEstablished: true},
	}
	w, err := svc.NewWorker(sub, p.kcfg.Topic, &logbus.LoggingPublisher{Logger: p.log}, connections.WorkerConfig{BackfillEvery: 10 * time.Second})
	if err != nil {
		return err
	}
	if err := w.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

// observeConnections exports the count of notifications for provider users
// no connection has (acknowledged, never retried by the provider).
func (t *telemetry) observeConnections(s *connections.Service) error {
	return t.registry.Register(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "biosync_provider_notifications_unknown_user_total",
		Help: "Provider notifications naming a provider user no connection has; acknowledged and counted.",
	}, func() float64 { return float64(s.UnknownUsers()) }))
}

// anyConfigured reports whether at least one provider has a client.
func anyConfigured(s *connections.Service) bool {
	for _, p := range s.Providers() {
		if p.Configured {
			return true
		}
	}
	return false
}
