package sedimenttc_test

import (
	"context"
	"fmt"
	"log"

	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sedimentio/sediment/it/sedimenttc"
)

// Run a broker with a topic, produce to it and read the record back. The
// image is the one `make image` builds; it needs a Docker engine, so this
// example is compiled but not run by go test.
func ExampleRun() {
	ctx := context.Background()
	ctr, err := sedimenttc.Run(ctx, "sediment:latest", sedimenttc.WithTopics("events"))
	if err != nil {
		log.Fatal(err)
	}
	defer testcontainers.TerminateContainer(ctr)

	seed, err := ctr.SeedBroker(ctx)
	if err != nil {
		log.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(seed), kgo.ConsumeTopics("events"))
	if err != nil {
		log.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "events", Value: []byte("hello")}).FirstErr(); err != nil {
		log.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	fs.EachRecord(func(r *kgo.Record) { fmt.Println(string(r.Value)) })
}
