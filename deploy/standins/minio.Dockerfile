# Stand-in for the public minio/minio image that deploy/compose.yaml names,
# built by `scripts/compose-deps.sh images` (make standins) on machines that
# cannot pull images: FROM scratch around the static MinIO server that
# scripts/minio.sh builds from source at its pinned version (./bin/minio).
# Like the public image it runs `minio` with the container's command
# (compose.yaml: server /data ...), as root, with its data in the /data volume.
FROM scratch
LABEL org.opencontainers.image.title="minio (sediment stand-in)"
COPY minio /usr/bin/minio
COPY data/ /data/
VOLUME ["/data"]
EXPOSE 9000 9001
ENTRYPOINT ["/usr/bin/minio"]
CMD ["server", "/data"]
