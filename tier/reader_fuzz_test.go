package tier_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/sedimentio/sediment/segment"
	"github.com/sedimentio/sediment/segment/segmenttest"
	"github.com/sedimentio/sediment/tier"
	"github.com/sedimentio/sediment/tier/file"
	"github.com/sedimentio/sediment/tier/tiertest"
)

// FuzzReadCorrupt flips bytes of a remote .log object and reads it.
//
// Invariant: Read never returns wrong bytes. It either fails, or returns exactly what the
// intact object holds at that place, except in the fields the CRC does not cover and
// nothing else can check (partitionLeaderEpoch, bytes 12..15 of a batch).
func FuzzReadCorrupt(f *testing.F) {
	var log []byte
	var offsets []int64
	var starts []int
	next := int64(1000)
	for i := range 12 {
		recs := segmenttest.Values(fmt.Sprintf("value-%d-%s", i, bytes.Repeat([]byte("x"), i*97)))
		b := segmenttest.Batch{BaseOffset: next, FirstTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
			Compression: int8(i % 5), Records: append(recs, recs...)}.Encode()
		starts = append(starts, len(log))
		offsets = append(offsets, next)
		log = append(log, b...)
		next += 2
	}
	seg := tier.RemoteSegment{TopicID: testTopicID, UploadID: "fuzz", BaseOffset: 1000, EndOffset: next - 1, Size: int64(len(log)), Compression: "none"}
	var index []byte
	index = binary.BigEndian.AppendUint32(index, uint32(offsets[5]+1-1000))
	index = binary.BigEndian.AppendUint32(index, uint32(starts[5]))

	f.Add(uint32(70), byte(1), uint16(1003), uint16(500))
	f.Add(uint32(10), byte(0x80), uint16(1000), uint16(65535))
	f.Add(uint32(uint32(starts[5])+23), byte(3), uint16(1011), uint16(1))
	f.Fuzz(func(t *testing.T, at uint32, mask byte, off uint16, maxBytes uint16) {
		pos := int(at) % len(log)
		offset := 1000 + int64(off)%(next-1000)
		store, err := file.New(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		bad := bytes.Clone(log)
		bad[pos] ^= mask
		tiertest.MustPut(t, store, objKey(seg, tier.KindIndex), index)
		tiertest.MustPut(t, store, objKey(seg, tier.KindLog), bad)
		r, _, _ := newReader(t, store, func(c *tier.ReaderConfig) { c.ChunkSize = 512; c.ReadAhead = -1 })
		got, err := r.Read(t.Context(), seg, offset, int(maxBytes), true)
		if err != nil {
			if !errors.Is(err, tier.ErrRemoteCorrupt) {
				t.Fatalf("error not wrapping ErrRemoteCorrupt: %v", err)
			}
			return
		}
		// Where does the intact object have these bytes?
		i := 0
		for i < len(offsets)-1 && offsets[i]+1 < offset {
			i++
		}
		want := log[starts[i]:]
		if len(got) > len(want) {
			t.Fatalf("read %d bytes, only %d after the batch", len(got), len(want))
		}
		want = want[:len(got)]
		for p := 0; p < len(got); {
			h, err := segment.ParseBatchHeader(got[p:])
			if err != nil {
				t.Fatal(err)
			}
			g, w := bytes.Clone(got[p:p+int(h.Size())]), bytes.Clone(want[p:p+int(h.Size())])
			copy(g[12:16], w[12:16])
			if !bytes.Equal(g, w) {
				t.Fatalf("flip of %#x at %d: read at %d returned wrong bytes in the batch at %d", mask, pos, offset, p)
			}
			p += int(h.Size())
		}
	})
}
