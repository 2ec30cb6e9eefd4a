package main

// sediment user: SCRAM credentials (KIP-554), like Kafka's
// kafka-configs.sh --entity-type users --alter --add-config
// 'SCRAM-SHA-512=[password=...]'. Through the Kafka port
// (AlterUserScramCredentials, DescribeUserScramCredentials) by default, or
// with --meta-endpoints straight into etcd: that is how the first
// credential (the brokers' own, for a SASL inter-broker listener) gets in
// before any broker runs. Passwords are read from a file, never from the
// command line; only salted credentials are stored.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sedimentio/sediment/meta"
	"github.com/sedimentio/sediment/security"
)

var userCommand = &command{
	name: "user",
	about: "sediment user: SCRAM credentials of SASL users, through the Kafka port of any broker\n" +
		"(AlterUserScramCredentials, DescribeUserScramCredentials), or with --meta-endpoints\n" +
		"straight into the cluster's etcd, e.g. before the first broker starts.",
	verbs: []verb{
		{name: "set", args: "NAME --mechanism M --password-file FILE [--iterations N] [--meta-endpoints URLS]", summary: "create or replace a user's credential for one SCRAM mechanism", bind: bindUserSet},
		{name: "delete", args: "NAME --mechanism M [--meta-endpoints URLS]", summary: "delete a user's credential for one SCRAM mechanism", bind: bindUserDelete},
		{name: "list", args: "[NAME...] [--meta-endpoints URLS]", summary: "users with their SCRAM mechanisms and iteration counts (never a salt or key)", bind: bindUserList},
	},
}

// userFlags are the flags user verbs share.
type userFlags struct {
	mechanism string
	endpoints string
}

func (u *userFlags) register(fs *flag.FlagSet, withMechanism bool) {
	if withMechanism {
		fs.StringVar(&u.mechanism, "mechanism", string(security.ScramSHA512), "SCRAM-SHA-256 or SCRAM-SHA-512")
	}
	fs.StringVar(&u.endpoints, "meta-endpoints", "", "comma-separated etcd client `URLS` of the cluster: write or read etcd directly instead of --bootstrap-server")
}

func (u *userFlags) scram() (security.Mechanism, kadm.ScramMechanism, error) {
	switch m := security.Mechanism(strings.ToUpper(u.mechanism)); m {
	case security.ScramSHA256:
		return m, kadm.ScramSha256, nil
	case security.ScramSHA512:
		return m, kadm.ScramSha512, nil
	}
	return "", 0, usagef("--mechanism %q: want SCRAM-SHA-256 or SCRAM-SHA-512", u.mechanism)
}

// store connects to etcd at --meta-endpoints; close releases it.
func (u *userFlags) store(ctx context.Context) (*meta.Store, func(), error) {
	mcfg := meta.DefaultConfig()
	mcfg.Endpoints = splitList(u.endpoints)
	logger := slog.New(slog.DiscardHandler)
	node, err := meta.Start(ctx, mcfg, logger)
	if err != nil {
		return nil, nil, err
	}
	st, err := meta.OpenStore(ctx, node.Client(), logger)
	if err != nil {
		node.Close()
		return nil, nil, err
	}
	return st, func() { node.Close() }, nil
}

// target is the one user a verb names and its --mechanism.
func (u *userFlags) target(pos []string) (string, security.Mechanism, kadm.ScramMechanism, error) {
	if len(pos) != 1 || pos[0] == "" {
		return "", "", 0, usagef("name one user, got %q", pos)
	}
	m, km, err := u.scram()
	return pos[0], m, km, err
}

func bindUserSet(fs *flag.FlagSet) runFunc {
	var u userFlags
	var passwordFile string
	var iterations int
	u.register(fs, true)
	fs.StringVar(&passwordFile, "password-file", "", "`FILE` holding the password (its first line)")
	fs.IntVar(&iterations, "iterations", security.DefaultIterations, "SCRAM iteration count, 4096 to 16384")
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		name, mech, kmech, err := u.target(pos)
		if err != nil {
			return err
		}
		if passwordFile == "" {
			return usagef("--password-file is required")
		}
		if iterations < security.MinIterations || iterations > security.MaxIterations {
			return usagef("--iterations %d: want %d to %d", iterations, security.MinIterations, security.MaxIterations)
		}
		password, err := readPasswordFile(passwordFile)
		if err != nil {
			return fmt.Errorf("--password-file: %w", err)
		}
		if u.endpoints != "" {
			cred, err := security.NewScramCredential(mech, password, iterations)
			if err != nil {
				return err
			}
			st, done, err := u.store(ctx)
			if err != nil {
				return err
			}
			defer done()
			if _, err := st.PutScramCredential(ctx, name, string(mech), cred.Encode()); err != nil {
				return err
			}
		} else {
			adm, err := c.admin(ctx)
			if err != nil {
				return err
			}
			res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: name, Mechanism: kmech, Iterations: int32(iterations), Password: password}})
			if err := alteredErr(name, res, err); err != nil {
				return err
			}
		}
		fmt.Fprintf(s.err, "set %s credential of user %s\n", mech, name)
		return nil
	}
}

func bindUserDelete(fs *flag.FlagSet) runFunc {
	var u userFlags
	u.register(fs, true)
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		name, mech, kmech, err := u.target(pos)
		if err != nil {
			return err
		}
		if u.endpoints != "" {
			st, done, err := u.store(ctx)
			if err != nil {
				return err
			}
			defer done()
			if _, err := st.DeleteScramCredential(ctx, name, string(mech)); err != nil {
				return err
			}
		} else {
			adm, err := c.admin(ctx)
			if err != nil {
				return err
			}
			res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: name, Mechanism: kmech}}, nil)
			if err := alteredErr(name, res, err); err != nil {
				return err
			}
		}
		fmt.Fprintf(s.err, "deleted %s credential of user %s\n", mech, name)
		return nil
	}
}

// alteredErr is the error of one user's AlterUserScramCredentials.
func alteredErr(name string, res kadm.AlteredUserSCRAMs, err error) error {
	if err != nil {
		return err
	}
	r, ok := res[name]
	if !ok {
		return fmt.Errorf("user %s: %w", name, errNotAnswered)
	}
	if r.Err != nil {
		return &itemError{item: "user " + name, err: r.Err, msg: r.ErrMessage}
	}
	return nil
}

// userCredentialJSON is one credential of `user list --output json`:
//
//	{"users": [{"user": "alice", "mechanism": "SCRAM-SHA-512", "iterations": 4096}]}
type userCredentialJSON struct {
	User       string `json:"user"`
	Mechanism  string `json:"mechanism"`
	Iterations int    `json:"iterations"`
}

func bindUserList(fs *flag.FlagSet) runFunc {
	var u userFlags
	u.register(fs, false)
	return func(ctx context.Context, c *adminConn, pos []string, s streams) error {
		out := []userCredentialJSON{}
		var missing []error
		if u.endpoints != "" {
			st, done, err := u.store(ctx)
			if err != nil {
				return err
			}
			defer done()
			users, _, err := st.Users(ctx)
			if err != nil {
				return err
			}
			for _, name := range pos {
				if _, ok := users[name]; !ok {
					missing = append(missing, fmt.Errorf("user %s: %w", name, meta.ErrCredentialNotFound))
				}
			}
			for name, creds := range users {
				if len(pos) > 0 && !slices.Contains(pos, name) {
					continue
				}
				for m, stored := range creds {
					cred, err := security.ParseScramCredential(security.Mechanism(m), stored)
					if err != nil {
						return fmt.Errorf("user %s: %w", name, err)
					}
					out = append(out, userCredentialJSON{User: name, Mechanism: m, Iterations: cred.Iterations})
				}
			}
		} else {
			adm, err := c.admin(ctx)
			if err != nil {
				return err
			}
			described, err := adm.DescribeUserSCRAMs(ctx, pos...)
			if err != nil {
				return err
			}
			for name, d := range described {
				if d.Err != nil {
					missing = append(missing, &itemError{item: "user " + name, err: d.Err, msg: d.ErrMessage})
					continue
				}
				for _, ci := range d.CredInfos {
					out = append(out, userCredentialJSON{User: name, Mechanism: ci.Mechanism.String(), Iterations: int(ci.Iterations)})
				}
			}
		}
		slices.SortFunc(out, func(a, b userCredentialJSON) int {
			return strings.Compare(a.User+"\x00"+a.Mechanism, b.User+"\x00"+b.Mechanism)
		})
		err := c.print(s.out, map[string]any{"users": out}, func(w io.Writer) error {
			t := newTable(w, "USER", "MECHANISM", "ITERATIONS")
			for _, cr := range out {
				t.row(cr.User, cr.Mechanism, strconv.Itoa(cr.Iterations))
			}
			return t.flush()
		})
		if err != nil {
			return err
		}
		return errors.Join(missing...)
	}
}
