// Command sediment runs a Sediment broker and its tools.
//
//	sediment serve [--config FILE] [flags]   run a broker
//	sediment help
//
// The benchmark is a binary of its own, cmd/sediment-bench.
package main

import (
	"fmt"
	"os"
)

const usage = `sediment: a Kafka-compatible, storage-tiered message broker

Usage:
  sediment serve [--config FILE] [flags]   run a broker (see 'sediment serve --help')
  sediment help                            this text

Every flag can also be set with SEDIMENT_<NAME>, e.g. --node-id as SEDIMENT_NODE_ID.
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return
	default:
		fmt.Fprintf(os.Stderr, "sediment: unknown command %q\n\n%s", os.Args[1], usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sediment %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}
