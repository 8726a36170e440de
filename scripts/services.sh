#!/usr/bin/env bash
# Local Kafka (KRaft) + Redis for development and tests: scripts/services.sh up|down|status
exec "$(dirname "$0")/../.venv/bin/python" -m engine.services "$@"
