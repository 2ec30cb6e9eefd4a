package broker

// ListOffsets, versions 1-9: -1 latest (the high watermark), -2 earliest
// (the log start, in the tier when tiered), -3 the offset of the largest
// timestamp (KIP-734), -4 earliest local (KIP-405), -5 latest tiered
// (KIP-1005; -1 when nothing is tiered), and otherwise the first offset whose
// timestamp is at least the one asked for, searching the tier below the
// local log start. The answer is built on the connection's writer goroutine,
// as a search in the tier may wait for GETs.

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleListOffsets(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	return &pending{complete: func(ctx context.Context) outgoing {
		return outgoing{resp: listOffsets(ctx, c, req)}
	}}, nil
}

func listOffsets(ctx context.Context, c *conn, req *kmsg.ListOffsetsRequest) kmsg.Response {
	s := c.srv
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
			p, code := s.leaderForEpoch(rt.Topic, rp.Partition, rp.CurrentLeaderEpoch)
			if p == nil {
				sp.ErrorCode = code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			epoch := p.leaderEpoch.Load()
			if le := rp.CurrentLeaderEpoch; le >= 0 && le != epoch {
				sp.ErrorCode = kerr.FencedLeaderEpoch.Code
				if le > epoch {
					sp.ErrorCode = kerr.UnknownLeaderEpoch.Code
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.LeaderEpoch = epoch
			if err := s.ensureRemote(ctx, p); err != nil {
				c.log.Warn("reading remote segment metadata failed", "partition", p.String(), "err", err)
				sp.ErrorCode = kerr.LeaderNotAvailable.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			hw := p.hw.Load()
			if hw < p.epochStart.Load() && rp.Timestamp != -2 && rp.Timestamp != -4 {
				// KIP-207: a new leader's high watermark has not caught up
				// with its term yet; answering now could go backwards.
				sp.ErrorCode = kerr.OffsetNotAvailable.Code
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			switch ts := rp.Timestamp; {
			case ts == -1:
				sp.Offset = hw
			case ts == -2:
				sp.Offset = p.logStart()
			case ts == -4:
				sp.Offset = p.log.LogStartOffset()
			case ts == -3:
				mts, off := p.log.MaxTimestamp()
				if off >= 0 && off < hw {
					sp.Offset, sp.Timestamp = off, mts
				}
			case ts == -5:
				// KIP-1005: the last offset in the tier (-1 when none).
				if end := p.remoteEnd.Load(); end > 0 {
					sp.Offset = end - 1
				}
			case ts < 0:
				sp.ErrorCode = kerr.InvalidRequest.Code
			default:
				off, fts, ok, err := s.offsetForTimestamp(ctx, p, ts)
				switch {
				case err != nil:
					c.log.Error("offset for timestamp failed", "partition", p.String(), "err", err)
					sp.ErrorCode = kerr.KafkaStorageError.Code
				case ok && off < hw:
					sp.Offset, sp.Timestamp = off, fts
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}
