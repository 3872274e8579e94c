# CI only: a stand-in for rabbitmq:3.13-management (no registry here), from Debian's
# rabbitmq-server 3.10 with the management plugin. Like the official image: reads
# /etc/rabbitmq/conf.d/, logs to the console, starts as root and drops to the user rabbitmq
# (docker-entrypoint.sh, which compose/rabbitmq/start.sh execs), and the node's cookie and data
# live in /var/lib/rabbitmq.
ARG BASE_IMAGE=local/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends rabbitmq-server \
    && rm -rf /var/lib/apt/lists/* /var/lib/rabbitmq/* \
    && mkdir -p /etc/rabbitmq/conf.d \
    && printf '%s\n' 'loopback_users.guest = false' 'listeners.tcp.default = 5672' \
       'management.tcp.port = 15672' 'log.console = true' 'log.file = false' \
       > /etc/rabbitmq/conf.d/10-defaults.conf \
    && echo '[rabbitmq_management,rabbitmq_prometheus].' > /etc/rabbitmq/enabled_plugins \
    && chown -R rabbitmq:rabbitmq /etc/rabbitmq /var/lib/rabbitmq
COPY rabbitmq-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV HOME=/var/lib/rabbitmq \
    RABBITMQ_CONFIG_FILES=/etc/rabbitmq/conf.d \
    PATH=/usr/lib/rabbitmq/bin:$PATH
EXPOSE 5672 15672
ENTRYPOINT ["/bin/sh", "/usr/local/bin/docker-entrypoint.sh"]
CMD ["rabbitmq-server"]
