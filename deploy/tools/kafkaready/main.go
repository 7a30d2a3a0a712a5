// Command kafkaready waits until a Kafka cluster answers a Metadata request
// with at least one broker, then prints the brokers and exits 0; it exits 1
// when the timeout passes first.
//
// deploy/scripts/kafka-up.sh uses it because an open port is not readiness:
// a KRaft node accepts connections before its broker has registered with the
// controller, and clients then fail with errors unrelated to the code under
// test.
//
//	go run ./deploy/tools/kafkaready -brokers 127.0.0.1:19092 -timeout 2m
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated bootstrap brokers")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	quiet := flag.Bool("q", false, "print nothing on success")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	resp, err := waitReady(ctx, strings.Split(*brokers, ","))
	if err != nil {
		fmt.Fprintf(os.Stderr, "kafkaready: %s not ready after %v: %v\n", *brokers, *timeout, err)
		os.Exit(1)
	}
	if !*quiet {
		for _, b := range resp.Brokers {
			fmt.Printf("broker %d at %s:%d (controller %d, cluster %s)\n", b.NodeID, b.Host, b.Port, resp.ControllerID, deref(resp.ClusterID))
		}
	}
}

// waitReady retries a Metadata request (for no topics) until a response lists
// at least one broker and names a controller.
func waitReady(ctx context.Context, brokers []string) (*kmsg.MetadataResponse, error) {
	lastErr := errors.New("no attempt finished")
	for {
		resp, err := metadata(ctx, brokers)
		switch {
		case err != nil:
			lastErr = err
		case len(resp.Brokers) == 0:
			lastErr = errors.New("metadata response lists no brokers")
		case resp.ControllerID < 0:
			lastErr = errors.New("metadata response names no controller")
		default:
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return nil, lastErr
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func metadata(ctx context.Context, brokers []string) (*kmsg.MetadataResponse, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DialTimeout(3*time.Second), kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // none; nil would mean all
	return req.RequestWith(attempt, cl)
}

func deref(s *string) string {
	if s == nil {
		return "?"
	}
	return *s
}
