#!/bin/sh
# One-shot in the compose setup (eclipse-mosquitto image): the dynsec file with the admin account, once.
set -eu
file=/mosquitto/data/dynamic-security.json
if [ ! -f "$file" ]; then
    mosquitto_ctrl dynsec init "$file" "$VARDKOLL_BROKER_ADMIN_USERNAME" "$VARDKOLL_BROKER_ADMIN_PASSWORD"
    chown mosquitto:mosquitto "$file"
fi
