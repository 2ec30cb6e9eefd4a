package sedimenttc

import (
	"context"
	"fmt"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tcnetwork "github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// The MinIO server of WithMinIO: its credentials, the bucket the brokers
// tier to (created by them) and its S3 port in the container.
const (
	MinIOUser     = "sediment"
	MinIOPassword = "sediment-secret"
	MinIOBucket   = "sediment"
	MinIORegion   = "us-east-1"
	MinIOPort     = "9000/tcp"
	minioAlias    = "minio"
)

// TierURL is the --tier of brokers using the MinIO of WithMinIO: the bucket
// MinIOBucket under the prefix "tier".
func TierURL() string {
	return fmt.Sprintf("s3://%s/tier?endpoint=http://%s:9000&region=%s&path-style=true&create-bucket=true",
		MinIOBucket, minioAlias, MinIORegion)
}

// minioBrokerEnv is what a broker needs to tier to the MinIO of WithMinIO.
func minioBrokerEnv() map[string]string {
	return map[string]string{
		"SEDIMENT_TIER":         TierURL(),
		"AWS_ACCESS_KEY_ID":     MinIOUser,
		"AWS_SECRET_ACCESS_KEY": MinIOPassword,
		"AWS_REGION":            MinIORegion,
	}
}

func runMinIO(ctx context.Context, image string, nw *testcontainers.DockerNetwork) (*testcontainers.DockerContainer, error) {
	ctr, err := testcontainers.Run(ctx, image,
		testcontainers.WithCmd("server", "/data", "--address", ":9000", "--console-address", ":9001"),
		testcontainers.WithEnv(map[string]string{"MINIO_ROOT_USER": MinIOUser, "MINIO_ROOT_PASSWORD": MinIOPassword}),
		testcontainers.WithExposedPorts(MinIOPort),
		tcnetwork.WithNetwork([]string{minioAlias}, nw),
		testcontainers.WithWaitStrategyAndDeadline(startupTimeout,
			wait.ForHTTP("/minio/health/ready").WithPort(MinIOPort).WithPollInterval(50*time.Millisecond)),
	)
	if err != nil {
		if ctr != nil {
			ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("sedimenttc: minio: %w", err)
	}
	return ctr, nil
}

// MinIOEndpoint is the URL of the S3 API of the MinIO of WithMinIO from the
// host (http://host:port); an error without WithMinIO.
func (c *Container) MinIOEndpoint(ctx context.Context) (string, error) {
	if c.MinIO == nil {
		return "", fmt.Errorf("sedimenttc: no MinIO (WithMinIO)")
	}
	return c.MinIO.PortEndpoint(ctx, MinIOPort, "http")
}
