package main

// The consumption comparison of the groups phase: the same records read by
// the workload's verifying consumer (consume in workload.go: kgo's default
// fetch settings, every record checked) without a group, in a one-member
// classic group and in a one-member KIP-848 group, both with kgo's
// autocommit (every 5 s, and on leaving). Each way reads twice, in the order
// plain, classic, KIP-848, KIP-848, classic, plain, so that a drift of the
// machine over the phase weighs on each alike; a way's rate is its bytes
// over its two reads' time. A group read's time includes joining the group
// (FindCoordinator, the join or first heartbeat, the offset fetch): what a
// group consumer pays. Each group must then have committed offsets (kgo
// commits on leaving what was polled before the last poll: at least once,
// so never past a partition's end, and not the last poll's records) and be
// of the protocol it was meant to be (ConsumerGroupDescribe knows KIP-848
// groups only).

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeWay is one way of reading: no group, or a group of a protocol.
type consumeWay struct {
	name  string
	group bool
	proto groupProtocol
}

var (
	wayPlain    = consumeWay{name: "plain"}
	wayClassic  = consumeWay{name: "classic", group: true, proto: protoClassic}
	wayConsumer = consumeWay{name: "KIP-848", group: true, proto: protoConsumer}
	// consumeOrder is the order of the reads: each way twice, mirrored.
	consumeOrder = []consumeWay{wayPlain, wayClassic, wayConsumer, wayConsumer, wayClassic, wayPlain}
)

// compareConsumption produces w's records to a new topic and reads them
// back every way of consumeOrder.
func compareConsumption(ctx context.Context, seeds []string, w workloadConfig, pool *valuePool, phase func(string)) (prod produced, plain, classic, consumer phaseResult, err error) {
	phase(fmt.Sprintf("consumption: creating topic %s (%d partitions)", w.topic, w.partitions))
	if err = createTopic(ctx, seeds, w); err != nil {
		return prod, plain, classic, consumer, fmt.Errorf("creating topic: %w", err)
	}
	prod, err = produceChecked(ctx, seeds, w, pool, func(s string) { phase("consumption: " + s) })
	if err != nil {
		return prod, plain, classic, consumer, err
	}
	sums := map[string]*phaseResult{wayPlain.name: &plain, wayClassic.name: &classic, wayConsumer.name: &consumer}
	for i, way := range consumeOrder {
		var opts []kgo.Opt
		group := ""
		if way.group {
			group = fmt.Sprintf("sediment-bench-consume-%d-%s", i, strings.ToLower(way.name))
			opts = append(opts, kgo.ConsumerGroup(group))
			if way.proto == protoConsumer {
				opts = append(opts, kgo.ServerSideBalancer())
			}
		}
		what := fmt.Sprintf("consumption %d/%d: %s", i+1, len(consumeOrder), way.name)
		phase(fmt.Sprintf("%s: reading %d records", what, w.records))
		r, err := consume(ctx, seeds, w, pool, prod.ends, func(s string) { phase(what + ": " + s) }, opts...)
		if err != nil {
			return prod, plain, classic, consumer, fmt.Errorf("%s read: %w", way.name, err)
		}
		phase(fmt.Sprintf("%s: %.1f MiB/s", what, r.mibPerSec()))
		if way.group {
			if err := checkConsumedGroup(ctx, seeds, group, way.proto, w, prod.ends); err != nil {
				return prod, plain, classic, consumer, fmt.Errorf("%s read, group %s: %w", way.name, group, err)
			}
		}
		s := sums[way.name]
		s.records += r.records
		s.bytes += r.bytes
		s.elapsed += r.elapsed
	}
	return prod, plain, classic, consumer, nil
}

// checkConsumedGroup checks that group, read to the end and left, committed
// offsets, none past a partition's end, and was a group of proto.
func checkConsumedGroup(ctx context.Context, seeds []string, group string, proto groupProtocol, w workloadConfig, ends []int64) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		return err
	}
	defer closeClient(cl)
	offsets, err := kadm.NewClient(cl).FetchOffsets(ctx, group)
	if err != nil {
		return fmt.Errorf("OffsetFetch: %w", err)
	}
	var (
		errs      []error
		committed int
	)
	for p := range w.partitions {
		o, ok := offsets.Lookup(w.topic, int32(p))
		switch {
		case !ok:
		case o.Err != nil:
			errs = append(errs, fmt.Errorf("partition %d: %w", p, o.Err))
		case o.At < 0 || o.At > ends[p]:
			errs = append(errs, fmt.Errorf("partition %d: committed %d, the end is %d", p, o.At, ends[p]))
		default:
			committed++
		}
	}
	if committed == 0 {
		errs = append(errs, errors.New("no offset committed"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("after leaving: %w", err)
	}

	g, err := describeConsumerGroup(ctx, cl, group)
	if err != nil {
		return err
	}
	code := g.ErrorCode
	switch {
	case proto == protoConsumer && code != 0:
		return fmt.Errorf("ConsumerGroupDescribe: %w: not a KIP-848 group", kerr.ErrorForCode(code))
	case proto == protoClassic && code != kerr.GroupIDNotFound.Code:
		return fmt.Errorf("ConsumerGroupDescribe answers %v: a KIP-848 group, not a classic one", kerr.ErrorForCode(code))
	}
	return nil
}
