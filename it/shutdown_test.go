package it

import (
	"regexp"
	"testing"
	"time"
)

// TestCleanShutdownMidStream sends SIGTERM while producers are mid-stream: the
// broker must exit 0, and after a restart every acknowledged record is there.
func TestCleanShutdownMidStream(t *testing.T) {
	b := StartBroker(t)
	const topic = "shutdown"
	createTopic(t, b.Admin(t), topic, 3, nil)
	pg := startProducers(t, b, topic, 3, 2)
	pg.waitAcks(2000, 60*time.Second)
	b.Stop() // SIGTERM; requires exit code 0
	if _, ok := b.WaitLog(regexp.MustCompile(`broker stopped`), time.Second); !ok {
		t.Errorf("no 'broker stopped' line in the log of the clean shutdown")
	}
	acked := pg.ackCount()
	b.Restart()
	if line, ok := matchLine(b.RunLogs(), regexp.MustCompile(`(?i)truncat.*(torn|corrupt)|recovering segment`)); ok {
		t.Errorf("the log needed recovery after a clean shutdown: %s", line)
	}
	pg.waitAcks(acked+500, 60*time.Second)
	pg.finish()
	pg.verify(b)
	b.Stop()
}
