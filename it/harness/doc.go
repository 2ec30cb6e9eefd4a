// Package harness runs Sediment's processes for tests and for the
// benchmark: `sediment serve` brokers (one, or a cluster sharing an etcd
// quorum), a MinIO server, and any other child process, on free loopback
// ports, with their output captured in log files.
//
// It owns the process side of an integration run and nothing else:
//
//   - starting a child with a clean environment (no SEDIMENT_* variables
//     leak from the caller's), in its own process group and, on Linux, with
//     a parent-death signal, so a killed caller leaves no children behind
//     (StartProcess, Process);
//   - picking free loopback ports (FreeAddrs, StableAddr);
//   - knowing when a Kafka listener is usable: it answers ApiVersions and a
//     Metadata listing every broker, with a controller for a cluster
//     (PingKafka, WaitKafka, Broker.Start, Cluster.WaitKafka);
//   - knowing when MinIO is usable (/minio/health/live and
//     /minio/health/cluster answer 200);
//   - ending processes: Stop (SIGTERM, then SIGKILL after a grace period),
//     Kill (SIGKILL, as a crash would), Pause and Resume (SIGSTOP and
//     SIGCONT), and starting a stopped broker or MinIO again on the same
//     data and ports (a whole stopped cluster at once: Cluster.Start);
//   - what a process costs: its resident set (Memory: VmRSS and VmHWM) and
//     CPU time (CPU).
//
// Kafka-level checks (topics, replicas, producers) belong to the callers:
// it/ keeps them in its tests, cmd/sediment-bench in its workload.
//
// The API reports errors and takes a context: it does not import testing,
// since the benchmark is not a test. For tests, TB (which *testing.T
// satisfies) adds what a test needs on top: MinIOForTest starts a MinIO
// that the test's cleanup stops, and Missing applies the project's rule for
// missing tools (skip the test, but fail it under CI=true).
//
// Sediment brokers are started as
//
//	<bin> serve --node-id N --data-dir DIR --listen KAFKA --http HTTP \
//	    --meta-client-listen ETCD-CLIENT --meta-peer-listen ETCD-PEER \
//	    [--meta-initial-cluster 1=http://PEER1,2=http://PEER2,... | --meta-endpoints http://CLIENT1,...] \
//	    FLAGS...
//
// so the caller's flags come last and win. Every address is on 127.0.0.1.
//
// Linux is the platform this package is written for: elsewhere children
// get no parent-death signal and Memory and the CPU time of a running
// process cannot be read.
package harness
