package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	produceKey     = 0
	apiVersionsKey = 18
)

// api is one registered Kafka API: the versions this broker serves and its
// handler. ApiVersions answers from this table, so what is advertised is
// exactly what is registered.
type api struct {
	key      int16
	name     string
	min, max int16
	handle   func(c *conn, r *request) (*pending, error)
}

// registered lists every API the broker serves. Each entry's handler lives in
// the file named after the API key.
var registered = apiTable()

func apiTable() []api {
	return []api{
		{key: 0, min: 3, max: 12, handle: handleProduce},
		{key: 1, min: 4, max: 16, handle: handleFetch},
		{key: 2, min: 1, max: 9, handle: handleListOffsets},
		{key: 3, min: 0, max: 12, handle: handleMetadata},
		{key: 8, min: 0, max: 9, handle: handleOffsetCommit},
		{key: 9, min: 0, max: 9, handle: handleOffsetFetch},
		{key: 10, min: 0, max: 6, handle: handleFindCoordinator},
		{key: 11, min: 0, max: 9, handle: handleJoinGroup},
		{key: 12, min: 0, max: 4, handle: handleHeartbeat},
		{key: 13, min: 0, max: 5, handle: handleLeaveGroup},
		{key: 14, min: 0, max: 5, handle: handleSyncGroup},
		{key: 15, min: 0, max: 5, handle: handleDescribeGroups},
		{key: 16, min: 0, max: 5, handle: handleListGroups},
		{key: 17, min: 0, max: 1, handle: handleSaslHandshake},
		{key: 18, min: 0, max: 4, handle: handleApiVersions},
		{key: 19, min: 2, max: 7, handle: handleCreateTopics},
		{key: 20, min: 1, max: 6, handle: handleDeleteTopics},
		{key: 21, min: 0, max: 2, handle: handleDeleteRecords},
		{key: 22, min: 0, max: 5, handle: handleInitProducerID},
		{key: 23, min: 0, max: 4, handle: handleOffsetForLeaderEpoch},
		{key: 24, min: 0, max: 5, handle: handleAddPartitionsToTxn},
		{key: 25, min: 0, max: 4, handle: handleAddOffsetsToTxn},
		{key: 26, min: 0, max: 4, handle: handleEndTxn}, // v5 is transaction version 2 (KIP-890 part 2)
		{key: 27, min: 0, max: 1, handle: handleWriteTxnMarkers},
		{key: 28, min: 0, max: 4, handle: handleTxnOffsetCommit},
		{key: 29, min: 1, max: 3, handle: handleDescribeACLs},
		{key: 30, min: 1, max: 3, handle: handleCreateACLs},
		{key: 31, min: 1, max: 3, handle: handleDeleteACLs},
		{key: 32, min: 1, max: 4, handle: handleDescribeConfigs},
		{key: 33, min: 0, max: 2, handle: handleAlterConfigs},
		{key: 35, min: 1, max: 4, handle: handleDescribeLogDirs},
		{key: 36, min: 0, max: 2, handle: handleSaslAuthenticate},
		{key: 37, min: 0, max: 3, handle: handleCreatePartitions},
		{key: 42, min: 0, max: 2, handle: handleDeleteGroups},
		{key: 43, min: 0, max: 2, handle: handleElectLeaders},
		{key: 44, min: 0, max: 1, handle: handleIncrementalAlterConfigs},
		{key: 45, min: 0, max: 1, handle: handleAlterPartitionReassignments},
		{key: 46, min: 0, max: 0, handle: handleListPartitionReassignments},
		{key: 47, min: 0, max: 0, handle: handleOffsetDelete},
		{key: 50, min: 0, max: 0, handle: handleDescribeUserScramCredentials},
		{key: 51, min: 0, max: 0, handle: handleAlterUserScramCredentials},
		{key: 60, min: 0, max: 1, handle: handleDescribeCluster},
		{key: 61, min: 0, max: 0, handle: handleDescribeProducers},
		{key: 65, min: 0, max: 0, handle: handleDescribeTransactions},
		{key: 66, min: 0, max: 2, handle: handleListTransactions},
		{key: 68, min: 0, max: 1, handle: handleConsumerGroupHeartbeat},
		{key: 69, min: 0, max: 1, handle: handleConsumerGroupDescribe},
	}
}

// buildAPIs indexes the table. It is called from New, not at package
// initialisation, because the ApiVersions handler reads the table.
func buildAPIs(table []api) (map[int16]api, []api) {
	m := make(map[int16]api, len(table))
	list := make([]api, 0, len(table))
	for _, a := range table {
		a.name = kmsg.NameForKey(a.key)
		if max := kmsg.RequestForKey(a.key).MaxVersion(); a.max > max {
			panic("broker: registered version above what kmsg knows") // programming error, caught by tests
		}
		m[a.key] = a
		list = append(list, a)
	}
	return m, list
}

func (s *Server) apiVersionKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(s.apiList))
	for _, a := range s.apiList {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key, MinVersion: a.min, MaxVersion: a.max})
	}
	return keys
}

// unsupportedApiVersions is the KIP-511 reply to an ApiVersions request of a
// version we do not serve: v0 format, error 35, our versions.
func (s *Server) unsupportedApiVersions() kmsg.Response {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = s.apiVersionKeys()
	return resp
}

// immediate wraps a response that is ready now.
func immediate(resp kmsg.Response) (*pending, error) { return &pending{resp: resp}, nil }
