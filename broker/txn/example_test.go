package txn

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// The life of a transaction: the coordinator leads partition 0 of
// __transaction_state (here an in-memory log; the broker passes the
// partition layer's partitions through Elected), a producer initializes,
// adds a partition and commits; the markers go out through the
// MarkerWriter and the transaction completes.
func Example() {
	markers := newFakeMarkers()
	c, err := New(DefaultConfig(), Deps{
		ProducerIDs:     &fakePIDs{next: 4000},
		Markers:         markers,
		Partitions:      func() int32 { return 1 },
		TopicPartitions: func(topic string) int32 { return map[string]int32{"orders": 3}[topic] },
	})
	if err != nil {
		panic(err)
	}
	defer c.Close()
	c.elect(0, newMemLog(), 1)
	ctx := context.Background()

	var initResp *kmsg.InitProducerIDResponse
	for {
		init := kmsg.NewPtrInitProducerIDRequest()
		init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("orders-writer"), 60000
		initResp = c.InitProducerID(ctx, init)
		if initResp.ErrorCode == 0 { // COORDINATOR_LOAD_IN_PROGRESS until loaded
			break
		}
		time.Sleep(time.Millisecond)
	}
	fmt.Println("producer", initResp.ProducerID, "epoch", initResp.ProducerEpoch)

	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version, add.TransactionalID = 3, "orders-writer"
	add.ProducerID, add.ProducerEpoch = initResp.ProducerID, initResp.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "orders", Partitions: []int32{2}}}
	fmt.Println("add:", c.AddPartitionsToTxn(ctx, add).Topics[0].Partitions[0].ErrorCode)

	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "orders-writer", initResp.ProducerID, initResp.ProducerEpoch, true
	fmt.Println("commit:", c.EndTxn(ctx, end).ErrorCode)

	for {
		d := c.DescribeTransactions(&kmsg.DescribeTransactionsRequest{TransactionalIDs: []string{"orders-writer"}})
		if st := d.TransactionStates[0].State; st == "CompleteCommit" {
			fmt.Println(st, "markers:", len(markers.writtenTo(TopicPartition{"orders", 2})))
			break
		}
		time.Sleep(time.Millisecond)
	}
	// Output:
	// producer 4000 epoch 0
	// add: 0
	// commit: 0
	// CompleteCommit markers: 1
}
