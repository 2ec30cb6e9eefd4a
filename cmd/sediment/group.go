package main

// sediment group: consumer groups through the Kafka port, like Kafka's
// kafka-consumer-groups.sh. This file has the command, list and delete;
// group_describe.go and group_reset.go the other verbs. The JSON each verb
// prints is documented on its types and in README ("The sediment group
// command"); fields are only ever added.

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

var groupCommand = &command{
	name: "group",
	about: "sediment group: consumer groups, through the Kafka port of any broker (like Kafka's\n" +
		"kafka-consumer-groups.sh). Classic groups for now; KIP-848 groups follow when the broker has them.",
	verbs: []verb{
		{name: "list", args: "[--state S,...]", summary: "groups with their state, protocol type and group type", bind: bindGroupList},
		{name: "describe", args: "GROUP...", summary: "state, members and their assignments, and per partition the committed offset, log end offset and lag", bind: bindGroupDescribe},
		{name: "delete", args: "GROUP...", summary: "delete groups that have no members, with their committed offsets", bind: bindGroupDelete},
		{name: "reset-offsets", args: "GROUP (--topic T[:P,...]... | --all-topics) (--to-earliest | --to-latest | --to-offset N | --to-datetime RFC3339 | --shift-by N) [--execute]",
			summary: "set the committed offsets of an inactive group; a dry run that prints the plan unless --execute", bind: bindGroupReset},
	},
}

// groupStates are the states ListGroups filters on (Kafka's
// ConsumerGroupState, KIP-848's included), in their canonical spelling.
var groupStates = []string{"PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Empty", "Assigning", "Reconciling", "Unknown"}

// listedGroupJSON is one group of `group list --output json`:
//
//	{"groups": [{"group": "g1", "state": "Stable", "protocol_type": "consumer", "type": "classic", "coordinator": 1}]}
//
// type is the group type (classic, consumer) when the broker says it
// (ListGroups v5+), absent otherwise; coordinator is the coordinator's node id.
type listedGroupJSON struct {
	Group        string `json:"group"`
	State        string `json:"state"`
	ProtocolType string `json:"protocol_type"`
	Type         string `json:"type,omitempty"`
	Coordinator  int32  `json:"coordinator"`
}

func bindGroupList(fs *flag.FlagSet) runFunc {
	var states string
	fs.StringVar(&states, "state", "", "only groups in these comma-separated `states`: "+strings.Join(groupStates, ", ")+" (any case)")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		if len(pos) > 0 {
			return usagef("list takes no arguments, got %q", pos)
		}
		filter, err := parseStates(states)
		if err != nil {
			return err
		}
		groups, listErr := listGroups(ctx, c, filter)
		if groups == nil && listErr != nil {
			return listErr
		}
		err = c.print(s.out, map[string]any{"groups": groups}, func(w io.Writer) error {
			t := newTable(w, "GROUP", "STATE", "PROTOCOL-TYPE", "TYPE", "COORDINATOR")
			for _, g := range groups {
				t.row(g.Group, g.State, g.ProtocolType, g.Type, fmt.Sprint(g.Coordinator))
			}
			return t.flush()
		})
		return cmp.Or(err, listErr)
	}
}

// parseStates turns --state into canonical state names.
func parseStates(list string) ([]string, error) { return canonicalNames("--state", list, groupStates) }

// listGroups asks every broker for the groups it coordinates. Groups come
// back sorted by name; a broker that did not answer makes the error, next
// to what the others answered (nil only when nothing answered).
func listGroups(ctx context.Context, c *adminConn, states []string) ([]listedGroupJSON, error) {
	if _, err := c.admin(ctx); err != nil {
		return nil, err
	}
	req := kmsg.NewPtrListGroupsRequest()
	req.StatesFilter = states
	groups := []listedGroupJSON{}
	var errs []error
	answered := false
	for _, sh := range c.client().RequestSharded(ctx, req) {
		if sh.Err != nil {
			errs = append(errs, fmt.Errorf("broker %d (%s:%d): %w", sh.Meta.NodeID, sh.Meta.Host, sh.Meta.Port, sh.Err))
			continue
		}
		answered = true
		resp := sh.Resp.(*kmsg.ListGroupsResponse)
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("broker %d: %w", sh.Meta.NodeID, err))
		}
		for _, g := range resp.Groups {
			groups = append(groups, listedGroupJSON{Group: g.Group, State: g.GroupState, ProtocolType: g.ProtocolType, Type: g.GroupType, Coordinator: sh.Meta.NodeID})
		}
	}
	slices.SortFunc(groups, func(a, b listedGroupJSON) int { return strings.Compare(a.Group, b.Group) })
	if !answered {
		groups = nil
	}
	return groups, errors.Join(errs...)
}

// deletedGroupJSON is one group of `group delete --output json`:
//
//	{"groups": [{"group": "g1", "deleted": true},
//	            {"group": "g2", "deleted": false, "error": "NON_EMPTY_GROUP", "error_message": "The group is not empty."}]}
//
// error is Kafka's error name, absent when the error is not Kafka's (the
// coordinator could not be reached); error_message is for people.
type deletedGroupJSON struct {
	Group        string `json:"group"`
	Deleted      bool   `json:"deleted"`
	Error        string `json:"error,omitempty"`
	ErrorMessage string `json:"error_message,omitempty"`
}

func bindGroupDelete(fs *flag.FlagSet) runFunc {
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		groups, adm, err := c.groupsAdmin(ctx, pos)
		if err != nil {
			return err
		}
		resps, reqErr := adm.DeleteGroups(ctx, slices.Clone(groups)...)
		out := make([]deletedGroupJSON, 0, len(groups))
		failed := 0
		for _, g := range groups {
			r, ok := resps[g]
			if !ok {
				r.Err = notAnswered(reqErr)
			}
			d := deletedGroupJSON{Group: g, Deleted: r.Err == nil}
			if r.Err != nil {
				failed++
				d.Error, d.ErrorMessage = kafkaError(r.Err)
				if r.ErrMessage != "" {
					d.ErrorMessage = r.ErrMessage
				}
			}
			out = append(out, d)
		}
		err = c.print(s.out, map[string]any{"groups": out}, func(w io.Writer) error {
			t := newTable(w, "GROUP", "RESULT")
			for _, d := range out {
				res := "deleted"
				if !d.Deleted {
					res = strings.TrimPrefix(d.Error+": "+d.ErrorMessage, ": ")
				}
				t.row(d.Group, res)
			}
			return t.flush()
		})
		if err == nil && failed > 0 {
			err = fmt.Errorf("%d of %d groups not deleted", failed, len(groups))
		}
		return err
	}
}

// groupArgs are the GROUP arguments of a verb: at least one, none empty,
// duplicates dropped.
func groupArgs(pos []string) ([]string, error) { return uniqueArgs(pos, "GROUP") }

// groupNotFoundError is a group the coordinator does not know, worded as
// Kafka's tool words it.
type groupNotFoundError struct{ group string }

func (e groupNotFoundError) Error() string {
	return fmt.Sprintf("consumer group '%s' does not exist", e.group)
}

func (e groupNotFoundError) Unwrap() error { return kerr.GroupIDNotFound }

// describedGroupErr is why kadm could not describe d, if it could not.
func describedGroupErr(d kadm.DescribedGroup) error {
	switch {
	case d.Err == nil:
		return nil
	case errors.Is(d.Err, kerr.GroupIDNotFound):
		return groupNotFoundError{d.Group}
	case d.ErrMessage != "":
		return fmt.Errorf("%w (%s)", d.Err, d.ErrMessage)
	}
	return d.Err
}
