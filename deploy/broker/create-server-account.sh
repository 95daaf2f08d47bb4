#!/usr/bin/env bash
# Create the vardkoll server's own broker account and role in the dynamic security plugin (README step 4).
#
#   VARDKOLL_SERVER_MQTT_PASSWORD=... deploy/broker/create-server-account.sh -h HOST -p PORT -u ADMIN -P ADMIN_PASSWORD [--cafile CA]
#
# The arguments are mosquitto_ctrl's connection options (the dynsec admin account). Without
# VARDKOLL_SERVER_MQTT_PASSWORD, mosquitto_ctrl asks for the new account's password. Reads
# VARDKOLL_TOPIC_PREFIX, VARDKOLL_SHARE_GROUP and VARDKOLL_MQTT_USERNAME like the server (same defaults).
# Run it once; it stops at the first command the plugin refuses (e.g. the role exists already).
set -euo pipefail
prefix=${VARDKOLL_TOPIC_PREFIX:-vardkoll/v1}
group=${VARDKOLL_SHARE_GROUP:-vardkoll-ingest}
user=${VARDKOLL_MQTT_USERNAME:-vardkoll-server}
role=vardkoll-server

ctrl() {
    local out
    out=$(mosquitto_ctrl "${connection[@]}" dynsec "$@" 2>&1) || { echo "mosquitto_ctrl dynsec $1 failed: $out" >&2; exit 1; }
    # mosquitto_ctrl 2.0 exits 0 even when the broker or the plugin refuses; success prints nothing but
    # its warning about plain connections, so anything else is the refusal
    out=$(grep -v -e '^Warning: You are running mosquitto_ctrl without encryption' -e '^This means all of the configuration' -e '^[[:space:]]*$' <<<"$out" || true)
    if [ -n "$out" ]; then echo "mosquitto_ctrl dynsec $1: $out" >&2; exit 1; fi
}
connection=("$@")

ctrl createRole "$role"
acls=(
    "subscribePattern \$share/$group/$prefix/+/+/events"   # MQTT v5 shared subscription: several server processes
    "subscribePattern $prefix/+/+/events"                  # the fallback on an MQTT 3.1.1 broker
    "subscribePattern $prefix/+/+/status"
    "publishClientReceive $prefix/+/+/events"
    "publishClientReceive $prefix/+/+/status"
    "publishClientSend $prefix/+/+/ack"                    # acknowledgements after commit
    "publishClientSend $prefix/+/+/config"                 # vardkoll admin devices push-config
)
for acl in "${acls[@]}"; do
    read -r kind topic <<<"$acl"
    ctrl addRoleACL "$role" "$kind" "$topic" allow
done
if [ -n "${VARDKOLL_SERVER_MQTT_PASSWORD:-}" ]; then
    ctrl createClient "$user" -p "$VARDKOLL_SERVER_MQTT_PASSWORD"
else
    mosquitto_ctrl "${connection[@]}" dynsec createClient "$user"
fi
ctrl addClientRole "$user" "$role"
echo "created broker account $user with role $role (topics under $prefix/, share group $group)" >&2
