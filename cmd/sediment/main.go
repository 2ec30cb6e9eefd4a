// Command sediment runs a Sediment broker and its tools.
//
//	sediment serve [--config FILE] [flags]   run a broker
//	sediment topic <verb> [flags]            topics (create, list, describe, alter, delete)
//	sediment offsets TOPIC... [flags]        log start, local log start, last tiered offset, high watermark
//	sediment cluster describe [flags]        cluster id, controller, brokers
//	sediment log-dirs [TOPIC...] [flags]     data directories and partition sizes
//	sediment group <verb> [flags]            consumer groups (list, describe, delete, reset-offsets)
//	sediment healthcheck [URL]               a container's probe of its broker's /readyz
//	sediment help [COMMAND]
//
// The admin commands (topic, offsets, cluster, log-dirs, group, txn,
// producers, and acl, user, ... as they come) talk to
// a cluster through its Kafka port with franz-go's kadm, as any client would;
// admin.go has what they share. The benchmark is a binary of its own,
// cmd/sediment-bench.
package main

import (
	"context"
	"fmt"
	"os"
)

const usage = `sediment: a Kafka-compatible, storage-tiered message broker

Usage:
  sediment serve [--config FILE] [flags]   run a broker (see 'sediment serve --help')
  sediment topic <verb> [flags]            topics: create, list, describe, alter, delete
  sediment offsets TOPIC[:P,...]... [flags]
                                           per partition: log start, local log start, last tiered
                                           offset, high watermark, last stable offset
  sediment cluster describe [flags]        cluster id, controller, brokers, partition health
  sediment log-dirs [TOPIC...] [flags]     each broker's data directory, disk space, partition sizes
  sediment group <verb> [flags]            consumer groups: list, describe, delete, reset-offsets
  sediment txn <verb> [flags]              transactions: list, describe
  sediment producers describe TOPIC...     each partition's producers and open transactions
  sediment acl <verb> [flags]              ACLs: create, list, delete (brokers with --authorizer acl)
  sediment user <verb> [flags]             SCRAM credentials: set, delete, list
  sediment healthcheck [URL]               exit 0 if the broker's /readyz (or URL) answers 2xx
  sediment help [COMMAND]                  this text, or a command's

Every serve flag can also be set with SEDIMENT_<NAME>, e.g. --node-id as SEDIMENT_NODE_ID, or in
the --config file, which also takes Kafka's server.properties names (node.id, listeners, log.dirs,
...); a command-line flag wins over the environment, which wins over the file. The admin commands
read only their connection flags so (SEDIMENT_BOOTSTRAP_SERVER, SEDIMENT_OUTPUT, SEDIMENT_TIMEOUT).
`

// adminCommands are the commands that talk to a cluster through kadm.
var adminCommands = []*command{topicCommand, offsetsCommand, clusterCommand, logDirsCommand, groupCommand, txnCommand, producersCommand, aclCommand, userCommand}

// main leaves SIGINT to end an admin command at once (nothing to clean up);
// serve handles its signals itself.
func main() {
	os.Exit(runMain(context.Background(), os.Args[1:], streams{out: os.Stdout, err: os.Stderr}))
}

// runMain runs the command line args (without the program name) and returns
// the exit code.
func runMain(ctx context.Context, args []string, s streams) int {
	if len(args) == 0 {
		fmt.Fprint(s.err, usage)
		return exitUsage
	}
	switch args[0] {
	case "serve":
		// serve owns its signals: SIGTERM starts a controlled shutdown.
		if err := serve(args[1:]); err != nil {
			fmt.Fprintf(s.err, "sediment serve: %v\n", err)
			return exitFail
		}
		return exitOK
	case "healthcheck":
		return healthcheck(ctx, args[1:], s)
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if c := findCommand(args[1]); c != nil {
				c.help(s.out)
				return exitOK
			}
			if args[1] == "serve" {
				return runMain(ctx, []string{"serve", "--help"}, s)
			}
			fmt.Fprintf(s.err, "sediment help: unknown command %q\n\n%s", args[1], usage)
			return exitUsage
		}
		fmt.Fprint(s.out, usage)
		return exitOK
	}
	if c := findCommand(args[0]); c != nil {
		return c.run(ctx, args[1:], s)
	}
	fmt.Fprintf(s.err, "sediment: unknown command %q\n\n%s", args[0], usage)
	return exitUsage
}

func findCommand(name string) *command {
	for _, c := range adminCommands {
		if c.name == name {
			return c
		}
	}
	return nil
}
