package broker

// DescribeLogDirs, versions 1-4: the one data directory, with the size of
// every hosted partition and (v4) the file system's total and usable bytes.

import (
	"path/filepath"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeLogDirs(c *conn, r *request) (*pending, error) {
	req := r.kreq.(*kmsg.DescribeLogDirsRequest)
	if !c.authorizedCluster(kmsg.ACLOperationDescribe) {
		return deny(req, kerr.ClusterAuthorizationFailed.Code)
	}
	s := c.srv
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	dir, err := filepath.Abs(s.cfg.DataDir)
	if err != nil {
		dir = s.cfg.DataDir
	}
	d := kmsg.NewDescribeLogDirsResponseDir()
	d.Dir = dir
	d.TotalBytes, d.UsableBytes = -1, -1
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		d.TotalBytes = int64(st.Blocks) * st.Bsize
		d.UsableBytes = int64(st.Bavail) * st.Bsize
	}
	want := func(topic string, p int32) bool {
		if req.Topics == nil {
			return true
		}
		for _, t := range req.Topics {
			if t.Topic == topic {
				for _, q := range t.Partitions {
					if q == p {
						return true
					}
				}
			}
		}
		return false
	}
	byTopic := map[string]int{}
	for _, p := range s.parts.All() {
		if !want(p.Topic(), p.Index()) {
			continue
		}
		i, ok := byTopic[p.Topic()]
		if !ok {
			t := kmsg.NewDescribeLogDirsResponseDirTopic()
			t.Topic = p.Topic()
			d.Topics = append(d.Topics, t)
			i = len(d.Topics) - 1
			byTopic[p.Topic()] = i
		}
		dp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
		dp.Partition = p.Index()
		dp.Size = p.Size()
		d.Topics[i].Partitions = append(d.Topics[i].Partitions, dp)
	}
	resp.Dirs = append(resp.Dirs, d)
	return immediate(resp)
}
