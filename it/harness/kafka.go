package harness

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// PingKafka asks the broker at addr, and only it, for ApiVersions and then
// Metadata (of no topic), on a fresh connection, within 3 s. It returns the
// Metadata answer when both succeed.
func PingKafka(ctx context.Context, addr string) (*kmsg.MetadataResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second), kgo.RequestRetries(0))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	seed := cl.SeedBrokers()[0] // requests to a seed go to exactly that address
	av := kmsg.NewPtrApiVersionsRequest()
	// Required from v3 on; kgo fills them in only for requests it routes.
	av.ClientSoftwareName, av.ClientSoftwareVersion = "sediment-harness", "1"
	r, err := seed.Request(ctx, av)
	if err != nil {
		return nil, fmt.Errorf("ApiVersions: %w", err)
	}
	if resp := r.(*kmsg.ApiVersionsResponse); resp.ErrorCode != 0 {
		return nil, fmt.Errorf("ApiVersions: error code %d", resp.ErrorCode)
	}
	md := kmsg.NewPtrMetadataRequest()
	md.Topics = []kmsg.MetadataRequestTopic{} // none (nil would be all)
	r, err = seed.Request(ctx, md)
	if err != nil {
		return nil, fmt.Errorf("Metadata: %w", err)
	}
	return r.(*kmsg.MetadataResponse), nil
}

// WaitKafka retries, every 200 ms, until every one of addrs answers
// PingKafka with a Metadata listing at least brokers brokers and, when
// brokers > 1, a controller. It gives up when ctx ends or when one of
// procs exits (Process.Alive).
func WaitKafka(ctx context.Context, addrs []string, brokers int, procs ...*Process) error {
	return WaitFor(ctx, 200*time.Millisecond, procs, func() error {
		for _, addr := range addrs {
			md, err := PingKafka(ctx, addr)
			if err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
			if err := listsBrokers(md, brokers, nil, brokers > 1); err != nil {
				return fmt.Errorf("%s: %w", addr, err)
			}
		}
		return nil
	}, func(last error) error {
		return fmt.Errorf("no Kafka answer on %v: %w (last error: %v)", addrs, ctx.Err(), last)
	})
}

// listsBrokers checks a Metadata answer: at least n brokers, every one of
// ids among them, and a controller if controller is set.
func listsBrokers(md *kmsg.MetadataResponse, n int, ids []int32, controller bool) error {
	var have []int32
	for _, b := range md.Brokers {
		have = append(have, b.NodeID)
	}
	slices.Sort(have)
	switch {
	case len(have) == 0:
		return errors.New("Metadata: no brokers yet")
	case len(have) < n:
		return fmt.Errorf("Metadata: %d of %d brokers registered (%v)", len(have), n, have)
	case controller && md.ControllerID < 0:
		return errors.New("Metadata: no controller yet")
	}
	for _, id := range ids {
		if !slices.Contains(have, id) {
			return fmt.Errorf("Metadata lists brokers %v, not yet %d", have, id)
		}
	}
	return nil
}

// WaitFor calls try at once and then every interval until it returns nil,
// one of procs exits (that exit is the error), or ctx ends (then timedOut
// makes the error from try's last one).
func WaitFor(ctx context.Context, interval time.Duration, procs []*Process, try func() error, timedOut func(last error) error) error {
	retry := time.NewTimer(0)
	defer retry.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			return timedOut(last)
		case <-retry.C:
		}
		for _, p := range procs {
			if err := p.Alive(); err != nil {
				return err
			}
		}
		if last = try(); last == nil {
			return nil
		}
		retry.Reset(interval)
	}
}
