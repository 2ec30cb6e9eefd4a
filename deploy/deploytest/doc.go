// Package deploytest checks the deployment files under deploy/ against the
// APIs that read them and against the broker they describe. It holds tests
// only; it is a module of its own (this directory's go.mod) so that the
// Kubernetes, Prometheus operator and Prometheus modules it needs never move
// the dependencies of the broker binary. `make test` runs it.
//
//   - deploy/k8s: every manifest decodes strictly (unknown fields fail) into
//     its typed object (k8s.io/api, and the Prometheus operator's
//     ServiceMonitor), and the objects agree with each other: selectors
//     select the pod template, Service and probe ports name container ports,
//     volume mounts name volumes or claim templates, envFrom and valueFrom
//     name ConfigMaps, Secrets and keys that exist, and the broker settings
//     (SEDIMENT_* variables) agree with the ports, the headless Service, the
//     pod ordinals (node ids and the etcd initial cluster) and the data
//     volume. Each SEDIMENT_* name is a flag of the broker binary.
//   - The StatefulSet's pods run without Kubernetes: the broker binary with
//     the container's arguments and each pod's resolved environment, every
//     address replaced by a free loopback one and the S3 endpoint by a
//     MinIO holding the Secret's credentials; they must pass their probes,
//     form one cluster (node ids = ordinals, each advertising its own pod),
//     replicate and tier a topic, and stop on SIGTERM within the grace
//     period.
//   - deploy/prometheus/alerts.yml parses with Prometheus's rule parser
//     (model/rulefmt), and deploy/grafana/sediment.json's queries parse with
//     its PromQL parser; every metric either one names is exported on
//     /metrics by a running three-broker cluster that has served produce,
//     replication, tier uploads and remote reads.
//
// The broker binary comes from SEDIMENT_BIN (make test sets it); without it
// the tests that need a broker build one, and under CI=true they fail.
// MinIO is bin/minio (make minio) or SEDIMENT_MINIO_BIN; without it the
// test that needs it skips, and fails under CI=true.
package deploytest
