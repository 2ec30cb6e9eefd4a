package broker

// DeleteTopics, versions 1-6 (v6 may name topics by id). The topic and its
// partition states leave etcd in one transaction; every broker hosting a
// replica then removes its local logs.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sedimentio/sediment/meta"
)

func handleDeleteTopics(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	s := c.srv
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	ctx, cancel := context.WithTimeout(c.ctx, timeoutOr(req.TimeoutMillis))
	defer cancel()

	type target struct {
		name *string
		id   [16]byte
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			n := n
			targets = append(targets, target{name: &n})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic, st.TopicID = tg.name, tg.id
		var (
			t  meta.Topic
			ok bool
		)
		if tg.name != nil && *tg.name != "" {
			t, ok = s.cache.Topic(*tg.name)
		} else {
			t, ok = s.cache.TopicByID(meta.TopicID(tg.id))
		}
		if c.deleteTopicDenied(tg.name, t, ok) {
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			resp.Topics = append(resp.Topics, st)
			continue
		}
		if !ok {
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			if tg.name == nil || *tg.name == "" {
				st.ErrorCode = kerr.UnknownTopicID.Code
			}
			resp.Topics = append(resp.Topics, st)
			continue
		}
		name := t.Name
		st.Topic, st.TopicID = &name, t.ID
		rev, err := s.store.DeleteTopic(ctx, t.Name)
		switch {
		case errors.Is(err, meta.ErrTopicNotFound):
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		case err != nil:
			st.ErrorCode = kerr.KafkaStorageError.Code
			msg := err.Error()
			st.ErrorMessage = &msg
		default:
			if err := s.syncMeta(ctx, rev); err != nil {
				st.ErrorCode = kerr.RequestTimedOut.Code
			} else {
				s.log.Info("deleted topic", "topic", t.Name)
			}
		}
		resp.Topics = append(resp.Topics, st)
	}
	return immediate(resp)
}
