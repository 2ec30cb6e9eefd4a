// Package sedimenttc runs Sediment brokers in containers for Go tests, as a
// testcontainers-go module in the style of its Kafka and Redpanda modules.
//
//	ctr, err := sedimenttc.Run(ctx, "sediment:latest", sedimenttc.WithTopics("events"))
//	defer testcontainers.TerminateContainer(ctr)
//	seed, err := ctr.SeedBroker(ctx) // host:port for any Kafka client
//
// Run starts one broker (embedded etcd, a file tier in /data) and returns once
// it answers /readyz and its Kafka port is open. Options add a MinIO-backed
// tier (WithMinIO: a MinIO container on the same Docker network, its bucket
// created by the brokers), a cluster of N brokers whose etcd members peer over
// that network (WithCluster), topics created before Run returns (WithTopics)
// and any `sediment serve` setting (WithSetting, or testcontainers.WithEnv
// with SEDIMENT_* names). Every other testcontainers.ContainerCustomizer
// applies to each broker's container.
//
// Addresses: each broker listens on 0.0.0.0:9092 in its container and, with
// no SEDIMENT_ADVERTISE, advertises its container address on its network, so
// the brokers reach each other and other containers on the network reach
// them. SeedBroker is the host's mapped port of the first broker; the
// addresses clients learn from Metadata are the container addresses, which a
// Linux host routes to (Docker Desktop's host does not: there, set
// SEDIMENT_ADVERTISE per broker until Sediment has a second listener).
//
// Terminate removes every container and the network Run created. The image is
// built by `make image` (deploy/Dockerfile); no image is pulled by this
// package beyond those named to it.
package sedimenttc
