#!/bin/sh
# As the official image's entrypoint: as root, own the data and drop to the user rabbitmq.
# (Not /etc/rabbitmq: compose mounts files there read-only.)
set -e
if [ "$(id -u)" = 0 ]; then
  chown -R rabbitmq:rabbitmq /var/lib/rabbitmq
  exec setpriv --reuid=rabbitmq --regid=rabbitmq --init-groups env HOME=/var/lib/rabbitmq "$@"
fi
exec "$@"
