#!/bin/sh
# As the official image's entrypoint: `redis-server --flags` without a config file gets
# --protected-mode no (else Redis refuses every client but localhost).
set -e
if [ "$1" = redis-server ]; then
  shift
  case "${1:-}" in
    ""|-*) set -- redis-server --protected-mode no "$@" ;;
    *) set -- redis-server "$@" ;;
  esac
fi
exec "$@"
