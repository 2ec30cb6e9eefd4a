package meta

import (
	"context"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestDirWatchRelistsAfterCompaction: a watch whose next revision was compacted away fails;
// the mirror lists the directory again and carries on from there.
func TestDirWatchRelistsAfterCompaction(t *testing.T) {
	ctx := testCtx(t)
	n := startSingle(t, "")
	s := openStore(t, n.Client())
	for _, name := range []string{"a", "b", "c"} {
		if _, err := s.PutScramCredential(ctx, name, "SCRAM-SHA-256", "stored-"+name); err != nil {
			t.Fatal(err)
		}
	}
	rev, err := s.DeleteScramCredential(ctx, "b", "SCRAM-SHA-256")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client().Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		seen  []int
		calls = make(chan struct{}, 10)
	)
	w := &dirWatch{store: s, log: testLogger(), dir: usersDir, advanced: make(chan struct{}),
		onChange: func(items map[string][]byte, _ int64) {
			mu.Lock()
			seen = append(seen, len(items))
			mu.Unlock()
			calls <- struct{}{}
		}}
	// As if the mirror had listed at revision 1 and then lost its watch.
	w.items, w.rev = map[string][]byte{"stale": nil}, 1
	wctx, cancel := context.WithCancel(ctx)
	w.cancel = cancel
	w.wg.Add(1)
	go w.run(wctx)
	t.Cleanup(w.Close)
	select {
	case <-calls:
	case <-time.After(5 * time.Second):
		t.Fatal("no re-list after the compacted watch failed")
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != 2 {
		t.Fatalf("re-listed sets of sizes %v, want [2] (a and c)", seen)
	}
	mu.Unlock()
	if w.Revision() < rev {
		t.Fatalf("revision %d after re-listing at or after %d", w.Revision(), rev)
	}
	// And it follows changes again.
	rev, err = s.PutScramCredential(ctx, "d", "SCRAM-SHA-256", "stored-d")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WaitRevision(ctx, rev); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := seen[len(seen)-1]; got != 3 {
		t.Fatalf("after a put: %d users", got)
	}
}
