package sedimenttc

import (
	"fmt"
	"strings"

	"github.com/testcontainers/testcontainers-go"
)

// options are what this module's Options set; every other customizer goes to
// each broker's container request as it is.
type options struct {
	brokers    int
	topics     []string
	settings   map[string]string
	minioImage string
}

// Option is an option of this module. It is a
// testcontainers.ContainerCustomizer, so it mixes with the generic ones in
// Run's arguments; Run applies it, not testcontainers.
type Option func(*options) error

// Customize does nothing: Run reads Options itself.
func (Option) Customize(*testcontainers.GenericContainerRequest) error { return nil }

// WithTopics creates topics, with the brokers' num.partitions and
// default.replication.factor, before Run returns.
func WithTopics(topics ...string) Option {
	return func(o *options) error {
		o.topics = append(o.topics, topics...)
		return nil
	}
}

// WithSetting sets a `sediment serve` setting on every broker: name is the
// flag's name ("log-segment-bytes") or its variable (SEDIMENT_LOG_SEGMENT_BYTES).
func WithSetting(name, value string) Option {
	return func(o *options) error {
		env := SettingEnv(name)
		if env == "SEDIMENT_" {
			return fmt.Errorf("sedimenttc: WithSetting: empty name")
		}
		o.settings[env] = value
		return nil
	}
}

// WithEnv sets SEDIMENT_* (or any other) variables on every broker; later
// options win.
func WithEnv(env map[string]string) Option {
	return func(o *options) error {
		for k, v := range env {
			o.settings[k] = v
		}
		return nil
	}
}

// SettingEnv is the SEDIMENT_<NAME> variable of a `sediment serve` flag name.
func SettingEnv(name string) string {
	if strings.HasPrefix(name, "SEDIMENT_") {
		return name
	}
	return "SEDIMENT_" + strings.ToUpper(strings.ReplaceAll(strings.TrimLeft(name, "-"), "-", "_"))
}

// WithCluster runs n brokers, each in its own container on one network
// (aliases sediment-1 ... sediment-n). The first 1, 3 or 5 of them run the
// etcd members, which peer over that network; the others join as etcd
// clients. Topics default to replication factor min(n, 3).
func WithCluster(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("sedimenttc: WithCluster(%d): want at least one broker", n)
		}
		o.brokers = n
		return nil
	}
}

// WithMinIO tiers the brokers' sealed segments to a MinIO server run from
// image (a MinIO release image, e.g. "minio/minio:RELEASE.2025-09-07T16-13-09Z",
// whose entrypoint runs `minio` with the command's arguments) on the brokers'
// network. The brokers create the bucket (MinIOBucket) and reach MinIO as
// http://minio:9000 with MinIOUser/MinIOPassword; MinIOEndpoint is its S3 API
// from the host.
func WithMinIO(image string) Option {
	return func(o *options) error {
		if image == "" {
			return fmt.Errorf("sedimenttc: WithMinIO: empty image")
		}
		o.minioImage = image
		return nil
	}
}
