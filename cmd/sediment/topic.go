package main

// sediment topic: topics through the Kafka port, like Kafka's
// kafka-topics.sh (create, list, describe, alter, delete). The JSON each
// verb prints is documented on its types; fields are only ever added. The
// verbs that change something send their request through requestOne, so a
// refusal names the broker that refused (the controller, for create, delete
// and --partitions).

import (
	"cmp"
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var topicCommand = &command{
	name: "topic",
	about: "sediment topic: topics, through the Kafka port of any broker (like Kafka's kafka-topics.sh).\n" +
		"Topic configs are Kafka's (retention.ms, segment.bytes, remote.storage.enable, ...).",
	verbs: []verb{
		{name: "create", args: "TOPIC... [--partitions N] [--replication-factor N] [--config NAME=VALUE]... [--if-not-exists]",
			summary: "create topics (partitions and replication factor default to the broker's num.partitions and default.replication.factor)", bind: bindTopicCreate},
		{name: "list", args: "[--exclude-internal]", summary: "topics with their partition count, replication factor and whether they are internal", bind: bindTopicList},
		{name: "describe", args: "TOPIC...", summary: "topic id, configs (overrides in the table, all with their source in JSON) and per partition the leader, epoch, replicas and ISR", bind: bindTopicDescribe},
		{name: "alter", args: "TOPIC... [--partitions N] [--config NAME=VALUE]... [--delete-config NAME]...",
			summary: "grow the partition count to N, set configs, or delete config overrides (back to the broker default)", bind: bindTopicAlter},
		{name: "delete", args: "TOPIC... [--if-exists]", summary: "delete topics with their data (also in the tier)", bind: bindTopicDelete},
	},
}

// configFlag is a repeatable --config NAME=VALUE, in the order given; a
// name given twice keeps its last value.
type configFlag struct {
	names  []string
	values map[string]string
}

func (f *configFlag) String() string {
	var out []string
	for _, n := range f.names {
		out = append(out, n+"="+f.values[n])
	}
	return strings.Join(out, ",")
}

func (f *configFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, e.g. retention.ms=86400000")
	}
	if f.values == nil {
		f.values = map[string]string{}
	}
	if _, seen := f.values[name]; !seen {
		f.names = append(f.names, name)
	}
	f.values[name] = value
	return nil
}

// namesFlag is a repeatable flag of names (--delete-config NAME), also
// comma-separated.
type namesFlag []string

func (f *namesFlag) String() string { return strings.Join(*f, ",") }

func (f *namesFlag) Set(v string) error {
	for _, n := range splitList(v) {
		if !slices.Contains(*f, n) {
			*f = append(*f, n)
		}
	}
	return nil
}

// timeoutMillis is the broker-side bound of a request: the command's own.
func (c *adminConn) timeoutMillis() int32 {
	return int32(min(c.flags.timeout, time.Hour).Milliseconds())
}

// createdTopicJSON is one topic of `topic create --output json`:
//
//	{"topics": [{"topic": "orders", "created": true, "topic_id": "c2Vk...", "partitions": 3, "replication_factor": 1}]}
//
// A topic not created has created false and error (Kafka's name, e.g.
// TOPIC_ALREADY_EXISTS) and error_message; with --if-not-exists an existing
// topic is created false without an error.
type createdTopicJSON struct {
	Topic             string `json:"topic"`
	Created           bool   `json:"created"`
	TopicID           string `json:"topic_id,omitempty"`
	Partitions        int32  `json:"partitions,omitempty"`
	ReplicationFactor int16  `json:"replication_factor,omitempty"`
	Error             string `json:"error,omitempty"`
	ErrorMessage      string `json:"error_message,omitempty"`
	err               error
}

func bindTopicCreate(fs *flag.FlagSet) runFunc {
	var partitions, replication int
	var configs configFlag
	var ifNotExists bool
	fs.IntVar(&partitions, "partitions", -1, "partition `count` (-1: the broker's num.partitions)")
	fs.IntVar(&replication, "replication-factor", -1, "replicas of each partition (-1: the broker's default.replication.factor)")
	fs.Var(&configs, "config", "a topic config `NAME=VALUE` (repeatable), e.g. retention.ms=86400000")
	fs.BoolVar(&ifNotExists, "if-not-exists", false, "a topic that exists already is not an error")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		topics, err := uniqueArgs(pos, "TOPIC")
		if err != nil {
			return err
		}
		if partitions == 0 || partitions < -1 || partitions > math.MaxInt32 {
			return usagef("--partitions %d: want a count from 1, or -1 for the broker's default", partitions)
		}
		if replication == 0 || replication < -1 || replication > math.MaxInt16 {
			return usagef("--replication-factor %d: want a count from 1, or -1 for the broker's default", replication)
		}
		if _, err := c.admin(ctx); err != nil {
			return err
		}
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = c.timeoutMillis()
		for _, t := range topics {
			rt := kmsg.NewCreateTopicsRequestTopic()
			rt.Topic, rt.NumPartitions, rt.ReplicationFactor = t, int32(partitions), int16(replication)
			for _, n := range configs.names {
				rc := kmsg.NewCreateTopicsRequestTopicConfig()
				rc.Name, rc.Value = n, kmsg.StringPtr(configs.values[n])
				rt.Configs = append(rt.Configs, rc)
			}
			req.Topics = append(req.Topics, rt)
		}
		kresp, who, err := c.requestOne(ctx, req)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.CreateTopicsResponse)
		out := make([]createdTopicJSON, 0, len(topics))
		var errs []error
		for _, t := range topics {
			ct := createdTopicJSON{Topic: t}
			i := slices.IndexFunc(resp.Topics, func(rt kmsg.CreateTopicsResponseTopic) bool { return rt.Topic == t })
			switch {
			case i < 0:
				ct.err = &itemError{item: "topic " + t, broker: who, err: errNotAnswered}
			case ifNotExists && resp.Topics[i].ErrorCode == kerr.TopicAlreadyExists.Code:
			default:
				rt := resp.Topics[i]
				if ct.err = kafkaItemError("topic "+t, who, rt.ErrorCode, rt.ErrorMessage); ct.err == nil {
					ct.Created, ct.TopicID = true, topicIDText(rt.TopicID)
					ct.Partitions, ct.ReplicationFactor = rt.NumPartitions, rt.ReplicationFactor
				}
			}
			ct.Error, ct.ErrorMessage = errorFields(ct.err)
			errs = append(errs, ct.err)
			out = append(out, ct)
		}
		err = c.print(s.out, map[string]any{"topics": out}, func(w io.Writer) error {
			if !slices.ContainsFunc(out, func(ct createdTopicJSON) bool { return ct.err == nil }) {
				return nil // nothing to show; the errors follow
			}
			t := newTable(w, "TOPIC", "STATUS", "PARTITIONS", "REPLICATION-FACTOR", "TOPIC-ID")
			for _, ct := range out {
				switch {
				case ct.Created:
					t.row(ct.Topic, "created", fmt.Sprint(ct.Partitions), fmt.Sprint(ct.ReplicationFactor), ct.TopicID)
				case ct.err == nil:
					t.row(ct.Topic, "exists", "", "", "")
				}
			}
			return t.flush()
		})
		return cmp.Or(err, failuresOf("topics not created", errs))
	}
}

// topicIDText is a topic id as Kafka's tools print it (URL-safe base64
// without padding, Kafka's Uuid.toString), "" for none.
func topicIDText(id [16]byte) string {
	if id == ([16]byte{}) {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(id[:])
}

// listedTopicJSON is one topic of `topic list --output json`:
//
//	{"topics": [{"topic": "orders", "topic_id": "c2Vk...", "partitions": 3, "replication_factor": 1, "internal": false}]}
type listedTopicJSON struct {
	Topic             string `json:"topic"`
	TopicID           string `json:"topic_id,omitempty"`
	Partitions        int    `json:"partitions"`
	ReplicationFactor int    `json:"replication_factor"`
	Internal          bool   `json:"internal"`
	Error             string `json:"error,omitempty"`
	ErrorMessage      string `json:"error_message,omitempty"`
}

func bindTopicList(fs *flag.FlagSet) runFunc {
	var excludeInternal bool
	fs.BoolVar(&excludeInternal, "exclude-internal", false, "leave out internal topics (__consumer_offsets, __transaction_state)")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		if len(pos) > 0 {
			return usagef("list takes no arguments, got %q (see 'sediment topic describe')", pos)
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		tds, err := adm.ListTopicsWithInternal(ctx)
		if err != nil {
			return err
		}
		out := []listedTopicJSON{}
		for _, name := range tds.Names() {
			td := tds[name]
			if excludeInternal && td.IsInternal {
				continue
			}
			lt := listedTopicJSON{Topic: name, TopicID: topicIDText(td.ID), Partitions: len(td.Partitions), ReplicationFactor: replicationFactor(td), Internal: td.IsInternal}
			lt.Error, lt.ErrorMessage = kafkaError(td.Err)
			out = append(out, lt)
		}
		return c.print(s.out, map[string]any{"topics": out}, func(w io.Writer) error {
			t := newTable(w, "TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL", "ERROR")
			for _, lt := range out {
				t.row(lt.Topic, strconv.Itoa(lt.Partitions), strconv.Itoa(lt.ReplicationFactor), strconv.FormatBool(lt.Internal), lt.Error)
			}
			return t.flush()
		})
	}
}

// replicationFactor is the replica count of a topic's partitions (the
// largest, should they differ during a reassignment).
func replicationFactor(td kadm.TopicDetail) int {
	n := 0
	for _, p := range td.Partitions {
		n = max(n, len(p.Replicas))
	}
	return n
}

// describedTopicJSON is one topic of `topic describe --output json`:
//
//	{"topics": [{"topic": "orders", "topic_id": "c2Vk...", "internal": false, "replication_factor": 1,
//	  "partitions": [{"partition": 0, "leader": 1, "leader_epoch": 0, "replicas": [1], "isr": [1], "offline_replicas": []}],
//	  "configs": [{"name": "retention.ms", "value": "86400000", "source": "DYNAMIC_TOPIC_CONFIG", "sensitive": false}]}]}
//
// configs lists every config with its source (DYNAMIC_TOPIC_CONFIG for a
// topic's override, else where the default comes from); a topic that could
// not be described has only topic, error and error_message.
type describedTopicJSON struct {
	Topic             string                `json:"topic"`
	TopicID           string                `json:"topic_id,omitempty"`
	Internal          bool                  `json:"internal"`
	ReplicationFactor int                   `json:"replication_factor"`
	Partitions        []describedPartition  `json:"partitions,omitempty"`
	Configs           []describedConfigJSON `json:"configs,omitempty"`
	Error             string                `json:"error,omitempty"`
	ErrorMessage      string                `json:"error_message,omitempty"`
	err               error
}

type describedPartition struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	Error           string  `json:"error,omitempty"`
}

type describedConfigJSON struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

func bindTopicDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		topics, err := uniqueArgs(pos, "TOPIC")
		if err != nil {
			return err
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		m, err := adm.Metadata(ctx, topics...)
		if err != nil {
			return err
		}
		var found []string
		for _, t := range topics {
			if td, ok := m.Topics[t]; ok && td.Err == nil {
				found = append(found, t)
			}
		}
		var configs kadm.ResourceConfigs
		var configsErr error
		if len(found) > 0 {
			configs, configsErr = adm.DescribeTopicConfigs(ctx, found...)
			configsErr = namedShards(configsErr)
		}
		out := make([]describedTopicJSON, 0, len(topics))
		var errs []error
		for _, t := range topics {
			d := describeTopic(t, m, configs, configsErr)
			errs = append(errs, d.err)
			out = append(out, d)
		}
		err = c.print(s.out, map[string]any{"topics": out}, func(w io.Writer) error { return printTopics(w, out) })
		return cmp.Or(err, failuresOf("topics not described", errs))
	}
}

// describeTopic is topic's entry from the metadata and its configs.
func describeTopic(topic string, m kadm.Metadata, configs kadm.ResourceConfigs, configsErr error) describedTopicJSON {
	d := describedTopicJSON{Topic: topic}
	td, ok := m.Topics[topic]
	switch {
	case !ok:
		d.err = &itemError{item: "topic " + topic, err: errNotAnswered}
	case td.Err != nil:
		d.err = &itemError{item: "topic " + topic, err: td.Err}
	}
	if d.err != nil {
		d.Error, d.ErrorMessage = errorFields(d.err)
		return d
	}
	d.TopicID, d.Internal, d.ReplicationFactor = topicIDText(td.ID), td.IsInternal, replicationFactor(td)
	for _, p := range td.Partitions.Sorted() {
		dp := describedPartition{Partition: p.Partition, Leader: p.Leader, LeaderEpoch: p.LeaderEpoch,
			Replicas: nonNil(p.Replicas), ISR: nonNil(p.ISR), OfflineReplicas: nonNil(p.OfflineReplicas)}
		dp.Error, _ = kafkaError(p.Err)
		d.Partitions = append(d.Partitions, dp)
	}
	rc, err := configs.On(topic, nil)
	switch {
	case err != nil && configsErr != nil:
		d.err = &itemError{item: "topic " + topic + " configs", err: configsErr}
	case err != nil:
		d.err = &itemError{item: "topic " + topic + " configs", err: errNotAnswered}
	case rc.Err != nil:
		d.err = &itemError{item: "topic " + topic + " configs", err: rc.Err, msg: rc.ErrMessage}
	}
	if d.err != nil {
		d.Error, d.ErrorMessage = errorFields(d.err)
		return d
	}
	for _, cf := range rc.Configs {
		d.Configs = append(d.Configs, describedConfigJSON{Name: cf.Key, Value: cf.Value, Source: cf.Source.String(), Sensitive: cf.Sensitive})
	}
	slices.SortFunc(d.Configs, func(a, b describedConfigJSON) int { return strings.Compare(a.Name, b.Name) })
	return d
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return slices.Sorted(slices.Values(s))
}

// printTopics writes each described topic as a topic line (its overrides
// as CONFIGS) and a partition table, as kafka-topics.sh --describe does.
func printTopics(w io.Writer, topics []describedTopicJSON) error {
	first := true
	for _, d := range topics {
		if d.err != nil {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		var overrides []string
		for _, cf := range d.Configs {
			if cf.Source == kmsg.ConfigSourceDynamicTopicConfig.String() {
				v := "(sensitive)"
				if cf.Value != nil && !cf.Sensitive {
					v = *cf.Value
				}
				overrides = append(overrides, cf.Name+"="+v)
			}
		}
		t := newTable(w, "TOPIC", "TOPIC-ID", "PARTITIONS", "REPLICATION-FACTOR", "INTERNAL", "CONFIGS")
		t.row(d.Topic, d.TopicID, strconv.Itoa(len(d.Partitions)), strconv.Itoa(d.ReplicationFactor), strconv.FormatBool(d.Internal), strings.Join(overrides, ","))
		if err := t.flush(); err != nil {
			return err
		}
		t = newTable(w, "  PARTITION", "LEADER", "LEADER-EPOCH", "REPLICAS", "ISR", "OFFLINE", "ERROR")
		for _, p := range d.Partitions {
			t.row("  "+strconv.Itoa(int(p.Partition)), strconv.Itoa(int(p.Leader)), strconv.Itoa(int(p.LeaderEpoch)),
				joinInt32s(p.Replicas), joinInt32s(p.ISR), joinInt32s(p.OfflineReplicas), p.Error)
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	return nil
}

// alteredTopicJSON is one topic of `topic alter --output json`:
//
//	{"topics": [{"topic": "orders", "altered": true, "partitions": 6, "set_configs": {"retention.ms": "1000"}, "deleted_configs": ["segment.bytes"]}]}
//
// partitions is the new count when --partitions was given. A topic not
// altered (or only in part: the partitions grew but the configs were
// refused) has altered false and error and error_message.
type alteredTopicJSON struct {
	Topic          string            `json:"topic"`
	Altered        bool              `json:"altered"`
	Partitions     int32             `json:"partitions,omitempty"`
	SetConfigs     map[string]string `json:"set_configs,omitempty"`
	DeletedConfigs []string          `json:"deleted_configs,omitempty"`
	Error          string            `json:"error,omitempty"`
	ErrorMessage   string            `json:"error_message,omitempty"`
	err            error
}

func bindTopicAlter(fs *flag.FlagSet) runFunc {
	var partitions int
	var set configFlag
	var del namesFlag
	fs.IntVar(&partitions, "partitions", 0, "grow each topic to this partition `count` (Kafka never shrinks a topic)")
	fs.Var(&set, "config", "set a topic config `NAME=VALUE` (repeatable)")
	fs.Var(&del, "delete-config", "remove a topic's override of config `NAME` (repeatable or comma-separated): the broker default applies again")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		topics, err := uniqueArgs(pos, "TOPIC")
		if err != nil {
			return err
		}
		if partitions < 0 || partitions > math.MaxInt32 {
			return usagef("--partitions %d: want a count from 1", partitions)
		}
		if partitions == 0 && len(set.names) == 0 && len(del) == 0 {
			return usagef("nothing to alter: give --partitions, --config or --delete-config")
		}
		for _, n := range del {
			if _, ok := set.values[n]; ok {
				return usagef("--config and --delete-config both name %s", n)
			}
		}
		if _, err := c.admin(ctx); err != nil {
			return err
		}
		out := make([]alteredTopicJSON, len(topics))
		errs := make([]error, len(topics))
		for i, t := range topics {
			out[i].Topic = t
		}
		if partitions > 0 {
			req := kmsg.NewPtrCreatePartitionsRequest()
			req.TimeoutMillis = c.timeoutMillis()
			for _, t := range topics {
				rt := kmsg.NewCreatePartitionsRequestTopic()
				rt.Topic, rt.Count = t, int32(partitions)
				req.Topics = append(req.Topics, rt)
			}
			kresp, who, err := c.requestOne(ctx, req)
			if err != nil {
				return err
			}
			resp := kresp.(*kmsg.CreatePartitionsResponse)
			for i, t := range topics {
				j := slices.IndexFunc(resp.Topics, func(rt kmsg.CreatePartitionsResponseTopic) bool { return rt.Topic == t })
				if j < 0 {
					errs[i] = &itemError{item: "topic " + t, broker: who, err: errNotAnswered}
					continue
				}
				errs[i] = kafkaItemError("topic "+t+" partitions", who, resp.Topics[j].ErrorCode, resp.Topics[j].ErrorMessage)
				if errs[i] == nil {
					out[i].Partitions = int32(partitions)
				}
			}
		}
		if len(set.names) > 0 || len(del) > 0 {
			req := kmsg.NewPtrIncrementalAlterConfigsRequest()
			for i, t := range topics {
				if errs[i] != nil {
					continue
				}
				rr := kmsg.NewIncrementalAlterConfigsRequestResource()
				rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, t
				for _, n := range set.names {
					rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
					rc.Name, rc.Op, rc.Value = n, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(set.values[n])
					rr.Configs = append(rr.Configs, rc)
				}
				for _, n := range del {
					rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
					rc.Name, rc.Op = n, kmsg.IncrementalAlterConfigOpDelete
					rr.Configs = append(rr.Configs, rc)
				}
				req.Resources = append(req.Resources, rr)
			}
			if len(req.Resources) > 0 {
				kresp, who, err := c.requestAny(ctx, req)
				if err != nil {
					return err
				}
				resp := kresp.(*kmsg.IncrementalAlterConfigsResponse)
				for i, t := range topics {
					if errs[i] != nil {
						continue
					}
					j := slices.IndexFunc(resp.Resources, func(r kmsg.IncrementalAlterConfigsResponseResource) bool { return r.ResourceName == t })
					if j < 0 {
						errs[i] = &itemError{item: "topic " + t + " configs", broker: who, err: errNotAnswered}
						continue
					}
					if errs[i] = kafkaItemError("topic "+t+" configs", who, resp.Resources[j].ErrorCode, resp.Resources[j].ErrorMessage); errs[i] == nil {
						out[i].SetConfigs, out[i].DeletedConfigs = set.values, []string(del)
					}
				}
			}
		}
		for i := range out {
			out[i].err = errs[i]
			out[i].Altered = errs[i] == nil
			out[i].Error, out[i].ErrorMessage = errorFields(errs[i])
		}
		err = c.print(s.out, map[string]any{"topics": out}, func(w io.Writer) error {
			if !slices.ContainsFunc(out, func(a alteredTopicJSON) bool { return a.Altered }) {
				return nil // nothing to show; the errors follow
			}
			t := newTable(w, "TOPIC", "PARTITIONS", "SET-CONFIGS", "DELETED-CONFIGS")
			for _, a := range out {
				if a.Altered {
					var count string
					if a.Partitions > 0 {
						count = strconv.Itoa(int(a.Partitions))
					}
					t.row(a.Topic, count, set.String(), strings.Join(a.DeletedConfigs, ","))
				}
			}
			return t.flush()
		})
		return cmp.Or(err, failuresOf("topics not altered", errs))
	}
}

// deletedTopicJSON is one topic of `topic delete --output json`:
//
//	{"topics": [{"topic": "orders", "deleted": true}]}
//
// A topic not deleted has deleted false and error (e.g.
// UNKNOWN_TOPIC_OR_PARTITION) and error_message; with --if-exists a topic
// that does not exist is deleted false without an error.
type deletedTopicJSON struct {
	Topic        string `json:"topic"`
	Deleted      bool   `json:"deleted"`
	Error        string `json:"error,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
}

func bindTopicDelete(fs *flag.FlagSet) runFunc {
	var ifExists bool
	fs.BoolVar(&ifExists, "if-exists", false, "a topic that does not exist is not an error")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		topics, err := uniqueArgs(pos, "TOPIC")
		if err != nil {
			return err
		}
		if _, err := c.admin(ctx); err != nil {
			return err
		}
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = c.timeoutMillis()
		for _, t := range topics {
			rt := kmsg.NewDeleteTopicsRequestTopic()
			rt.Topic = kmsg.StringPtr(t)
			req.Topics = append(req.Topics, rt)
			req.TopicNames = append(req.TopicNames, t) // v0-5
		}
		kresp, who, err := c.requestOne(ctx, req)
		if err != nil {
			return err
		}
		resp := kresp.(*kmsg.DeleteTopicsResponse)
		out := make([]deletedTopicJSON, 0, len(topics))
		var errs []error
		for _, t := range topics {
			dt := deletedTopicJSON{Topic: t}
			var err error
			i := slices.IndexFunc(resp.Topics, func(rt kmsg.DeleteTopicsResponseTopic) bool { return rt.Topic != nil && *rt.Topic == t })
			switch {
			case i < 0:
				err = &itemError{item: "topic " + t, broker: who, err: errNotAnswered}
			case ifExists && resp.Topics[i].ErrorCode == kerr.UnknownTopicOrPartition.Code:
			default:
				err = kafkaItemError("topic "+t, who, resp.Topics[i].ErrorCode, resp.Topics[i].ErrorMessage)
				dt.Deleted = err == nil
			}
			dt.Error, dt.ErrorMessage = errorFields(err)
			errs = append(errs, err)
			out = append(out, dt)
		}
		err = c.print(s.out, map[string]any{"topics": out}, func(w io.Writer) error {
			if !slices.ContainsFunc(errs, func(e error) bool { return e == nil }) {
				return nil // nothing to show; the errors follow
			}
			t := newTable(w, "TOPIC", "STATUS")
			for _, dt := range out {
				switch {
				case dt.Deleted:
					t.row(dt.Topic, "deleted")
				case dt.Error == "":
					t.row(dt.Topic, "did not exist")
				}
			}
			return t.flush()
		})
		return cmp.Or(err, failuresOf("topics not deleted", errs))
	}
}
