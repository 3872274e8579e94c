#!/bin/sh
# Entrypoint of the compose service rabbitmq: writes the definitions RabbitMQ loads at boot
# (load_definitions in 20-subtone.conf), then starts it as the image does.
#
# A node that loads definitions does not create RABBITMQ_DEFAULT_USER itself, so the user and
# its permissions are definitions too; their password comes from the environment (compose/.env),
# so that file is written here, at every start, never committed:
#   10-subtone.json  the vhost and the queues Dramatiq declares (compose/rabbitmq/definitions.json)
#   20-users.json    RABBITMQ_DEFAULT_USER with RABBITMQ_DEFAULT_PASS, all rights on the vhost
# The files are loaded in name order (the vhost before the permissions on it), at every boot.
set -eu

: "${RABBITMQ_DEFAULT_USER:?}" "${RABBITMQ_DEFAULT_PASS:?}"
# DEFINITIONS_DIR: where to write them (the tests only; RabbitMQ reads the default).
dir=${DEFINITIONS_DIR:-/etc/rabbitmq/subtone-definitions}
source_dir=$(dirname "$0")

json_string() {
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

mkdir -p "$dir"
cp "$source_dir/definitions.json" "$dir/10-subtone.json"
user=$(json_string "$RABBITMQ_DEFAULT_USER")
(
  umask 077
  cat >"$dir/20-users.json" <<JSON
{
  "users": [
    {"name": $user, "password": $(json_string "$RABBITMQ_DEFAULT_PASS"), "tags": ["administrator"]}
  ],
  "permissions": [
    {"user": $user, "vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
  ]
}
JSON
)
if [ "$(id -u)" = 0 ] && id rabbitmq >/dev/null 2>&1; then
  chown -R rabbitmq:rabbitmq "$dir"
fi
exec docker-entrypoint.sh "$@"
