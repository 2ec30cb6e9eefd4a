package broker

import (
	"bytes"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// FuzzDecodeRequest feeds arbitrary frame bodies to the request decoder.
// Invariants: it never panics; whatever it accepts is a registered API at a
// registered version (or the KIP-511 ApiVersions fallback); and a request it
// decodes re-encodes with kmsg to bytes that decode to the same encoding.
func FuzzDecodeRequest(f *testing.F) {
	apis, _ := buildAPIs(apiTable())
	formatter := kmsg.NewRequestFormatter(kmsg.FormatterClientID("fuzz"))
	seed := func(r kmsg.Request) {
		frame := formatter.AppendRequest(nil, r, 7)
		f.Add(frame[4:]) // without the size prefix
	}
	for _, a := range apiTable() {
		for v := a.min; v <= a.max; v++ {
			r := kmsg.RequestForKey(a.key)
			r.SetVersion(v)
			seed(r)
		}
	}
	prod := kmsg.NewPtrProduceRequest()
	prod.SetVersion(9)
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "t"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = buildBatch(1, 0, 0, 3)
	rt.Partitions = append(rt.Partitions, rp)
	prod.Topics = append(prod.Topics, rt)
	seed(prod)
	f.Add([]byte{0, 18, 0, 99, 0, 0, 0, 1, 0xff, 0xff})
	f.Add([]byte{0x7f, 0x7f, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 0})

	f.Fuzz(func(t *testing.T, body []byte) {
		req, a, err := decodeRequest(apis, body)
		if err != nil {
			return
		}
		if req.kreq == nil {
			if req.key != apiVersionsKey {
				t.Fatalf("fallback for api %d", req.key)
			}
			return
		}
		if req.version < a.min || req.version > a.max {
			t.Fatalf("accepted %s v%d outside %d-%d", a.name, req.version, a.min, a.max)
		}
		enc := req.kreq.AppendTo(nil)
		again := kmsg.RequestForKey(req.key)
		again.SetVersion(req.version)
		if err := again.ReadFrom(enc); err != nil {
			t.Fatalf("re-decoding %s v%d: %v", a.name, req.version, err)
		}
		if enc2 := again.AppendTo(nil); !bytes.Equal(enc, enc2) {
			t.Fatalf("%s v%d does not re-encode identically", a.name, req.version)
		}
	})
}
