# CI only: a stand-in for redis:7.2-bookworm (no registry here), from Debian's redis-server 7.0.
# Like the official image: runs as the user redis in /data, and a bare `redis-server ARGS`
# (no config file) is started with protected mode off, so the stack's containers may connect.
ARG BASE_IMAGE=local/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data && chown redis:redis /data
COPY redis-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
WORKDIR /data
USER redis
ENTRYPOINT ["/bin/sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["redis-server"]
