package main

// sediment txn: transactions through the Kafka port, like Kafka's
// kafka-transactions.sh (list, describe). The JSON each verb prints is
// documented on its types; fields are only ever added.

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

var txnCommand = &command{
	name: "txn",
	about: "sediment txn: transactional ids and their transactions, through the Kafka port of any broker\n" +
		"(like Kafka's kafka-transactions.sh).",
	verbs: []verb{
		{name: "list", args: "[--state S,...] [--producer-id N,...]", summary: "transactional ids with their producer id, state and coordinator", bind: bindTxnList},
		{name: "describe", args: "TRANSACTIONAL-ID...", summary: "state, producer id and epoch, timeout, start time and the partitions of the ongoing transaction", bind: bindTxnDescribe},
	},
}

// txnStates are the transaction states ListTransactions filters on, in their
// canonical spelling.
var txnStates = []string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort", "Dead", "PrepareEpochFence"}

// listedTxnJSON is one transactional id of `txn list --output json`:
//
//	{"transactions": [{"transactional_id": "t1", "producer_id": 7, "state": "Ongoing", "coordinator": 1}]}
type listedTxnJSON struct {
	TransactionalID string `json:"transactional_id"`
	ProducerID      int64  `json:"producer_id"`
	State           string `json:"state"`
	Coordinator     int32  `json:"coordinator"`
}

func bindTxnList(fs *flag.FlagSet) runFunc {
	var states, pids string
	fs.StringVar(&states, "state", "", "only transactional ids in these comma-separated `states`: "+strings.Join(txnStates, ", ")+" (any case)")
	fs.StringVar(&pids, "producer-id", "", "only transactional ids using these comma-separated producer `ids`")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		if len(pos) > 0 {
			return usagef("list takes no arguments, got %q", pos)
		}
		filter, err := canonicalNames("--state", states, txnStates)
		if err != nil {
			return err
		}
		var ids []int64
		for _, f := range splitList(pids) {
			id, err := strconv.ParseInt(f, 10, 64)
			if err != nil || id < 0 {
				return usagef("--producer-id %q: want a producer id (a non-negative integer)", f)
			}
			ids = append(ids, id)
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		listed, listErr := adm.ListTransactions(ctx, ids, filter)
		if listed == nil && listErr != nil {
			return listErr
		}
		out := []listedTxnJSON{}
		for _, l := range listed.Sorted() {
			out = append(out, listedTxnJSON{TransactionalID: l.TxnID, ProducerID: l.ProducerID, State: l.State, Coordinator: l.Coordinator})
		}
		err = c.print(s.out, map[string]any{"transactions": out}, func(w io.Writer) error {
			t := newTable(w, "TRANSACTIONAL-ID", "PRODUCER-ID", "STATE", "COORDINATOR")
			for _, l := range out {
				t.row(l.TransactionalID, fmt.Sprint(l.ProducerID), l.State, fmt.Sprint(l.Coordinator))
			}
			return t.flush()
		})
		if err != nil {
			return err
		}
		return listErr
	}
}

// describedTxnJSON is one transactional id of `txn describe --output json`:
//
//	{"transactions": [{"transactional_id": "t1", "state": "Ongoing", "producer_id": 7, "producer_epoch": 0,
//	  "timeout_ms": 60000, "start_time": "2026-12-04T18:00:00Z", "coordinator": 1,
//	  "partitions": [{"topic": "orders", "partitions": [0, 2]}]}]}
//
// start_time is absent when no transaction is ongoing; error and
// error_message are set, and the rest absent, for an id that could not be
// described (TRANSACTIONAL_ID_NOT_FOUND for an unknown one).
type describedTxnJSON struct {
	TransactionalID string                `json:"transactional_id"`
	State           string                `json:"state,omitempty"`
	ProducerID      *int64                `json:"producer_id,omitempty"`
	ProducerEpoch   *int16                `json:"producer_epoch,omitempty"`
	TimeoutMs       *int32                `json:"timeout_ms,omitempty"`
	StartTime       string                `json:"start_time,omitempty"`
	Coordinator     *int32                `json:"coordinator,omitempty"`
	Partitions      []topicPartitionsJSON `json:"partitions,omitempty"`
	Error           string                `json:"error,omitempty"`
	ErrorMessage    string                `json:"error_message,omitempty"`
	err             error
}

func bindTxnDescribe(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		ids, err := uniqueArgs(pos, "TRANSACTIONAL-ID")
		if err != nil {
			return err
		}
		adm, err := c.admin(ctx)
		if err != nil {
			return err
		}
		described, reqErr := adm.DescribeTransactions(ctx, slices.Clone(ids)...)
		out := make([]describedTxnJSON, 0, len(ids))
		for _, id := range ids {
			d := describedTxnJSON{TransactionalID: id}
			if dt, ok := described[id]; !ok {
				d.err = notAnswered(reqErr)
			} else if dt.Err != nil {
				d.err = dt.Err
			} else {
				d.State, d.ProducerID, d.ProducerEpoch = dt.State, ptr(dt.ProducerID), ptr(dt.ProducerEpoch)
				d.TimeoutMs, d.Coordinator = ptr(dt.TimeoutMillis), ptr(dt.Coordinator)
				if dt.StartTimestamp >= 0 && dt.State != "Empty" && !strings.HasPrefix(dt.State, "Complete") {
					d.StartTime = time.UnixMilli(dt.StartTimestamp).UTC().Format(time.RFC3339Nano)
				}
				for _, t := range dt.Topics.Sorted() {
					d.Partitions = append(d.Partitions, topicPartitionsJSON{Topic: t.Topic, Partitions: slices.Sorted(slices.Values(t.Partitions))})
				}
			}
			if d.err != nil {
				d.Error, d.ErrorMessage = kafkaError(d.err)
			}
			out = append(out, d)
		}
		err = c.print(s.out, map[string]any{"transactions": out}, func(w io.Writer) error {
			t := newTable(w, "TRANSACTIONAL-ID", "STATE", "PRODUCER-ID", "EPOCH", "TIMEOUT-MS", "START-TIME", "COORDINATOR", "PARTITIONS")
			for _, d := range out {
				if d.err != nil {
					continue
				}
				var parts []string
				for _, tp := range d.Partitions {
					parts = append(parts, tp.Topic+":"+joinInt32s(tp.Partitions))
				}
				t.row(d.TransactionalID, d.State, fmt.Sprint(*d.ProducerID), fmt.Sprint(*d.ProducerEpoch), fmt.Sprint(*d.TimeoutMs),
					orDash(d.StartTime), fmt.Sprint(*d.Coordinator), orDash(strings.Join(parts, " ")))
			}
			return t.flush()
		})
		if err != nil {
			return err
		}
		var failed []string
		var last error
		for _, d := range out {
			if d.err != nil {
				last = d.err
				failed = append(failed, fmt.Sprintf("%s: %v", d.TransactionalID, d.err))
			}
		}
		return failures("transactional ids not described", len(out), failed, last)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
