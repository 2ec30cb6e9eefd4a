# Stand-in for the public prom/prometheus image that deploy/compose.yaml
# names, built by `scripts/compose-deps.sh images` (make standins) on machines
# that cannot pull images: FROM scratch around the static Prometheus server
# that scripts/compose-deps.sh builds from source at its pinned version
# (./bin/prometheus; without the web UI's assets, with the HTTP API). Like the
# public image it runs as nobody (65534) with its TSDB in the /prometheus
# volume and reads /etc/prometheus/prometheus.yml.
FROM scratch
LABEL org.opencontainers.image.title="prometheus (sediment stand-in)"
COPY prometheus /bin/prometheus
COPY --chown=65534:65534 data/ /prometheus/
USER 65534:65534
WORKDIR /prometheus
VOLUME ["/prometheus"]
EXPOSE 9090
ENTRYPOINT ["/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
