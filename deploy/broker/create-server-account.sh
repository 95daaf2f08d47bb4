#!/bin/sh
# Create the vardkoll server's own broker account and role in the dynamic security plugin (README step 4).
#
#   VARDKOLL_SERVER_MQTT_PASSWORD=... deploy/broker/create-server-account.sh -h HOST -p PORT -u ADMIN -P ADMIN_PASSWORD [--cafile CA]
#
# The arguments are mosquitto_ctrl's connection options (the dynsec admin account). Without
# VARDKOLL_SERVER_MQTT_PASSWORD, mosquitto_ctrl asks for the new account's password. Reads
# VARDKOLL_TOPIC_PREFIX, VARDKOLL_SHARE_GROUP and VARDKOLL_MQTT_USERNAME like the server (same defaults).
# Run it once; it stops at the first command the plugin refuses (e.g. the role exists already).
# POSIX sh, so that it also runs in the eclipse-mosquitto image (deploy/compose.yaml).
set -eu
prefix=${VARDKOLL_TOPIC_PREFIX:-vardkoll/v1}
group=${VARDKOLL_SHARE_GROUP:-vardkoll-ingest}
user=${VARDKOLL_MQTT_USERNAME:-vardkoll-server}
role=vardkoll-server

ctrl() {
    out=$(mosquitto_ctrl "$@" 2>&1 </dev/null) || { echo "mosquitto_ctrl $*: failed: $out" | sed 's/ -P [^ ]*/ -P …/' >&2; exit 1; }
    # mosquitto_ctrl 2.0 exits 0 even when the broker or the plugin refuses; success prints nothing but
    # its warning about plain connections, so anything else is the refusal
    out=$(printf '%s\n' "$out" | grep -v -e '^Warning: You are running mosquitto_ctrl without encryption' -e '^This means all of the configuration' -e '^[[:space:]]*$' || true)
    if [ -n "$out" ]; then echo "mosquitto_ctrl dynsec: $out" >&2; exit 1; fi
}

ctrl "$@" dynsec createRole "$role"
# MQTT v5 shared subscription (several server processes), the fallback on an MQTT 3.1.1 broker, status;
# acknowledgements after commit and remote config documents (vardkoll admin devices push-config).
while read -r kind topic; do
    ctrl "$@" dynsec addRoleACL "$role" "$kind" "$topic" allow
done <<ACLS
subscribePattern \$share/$group/$prefix/+/+/events
subscribePattern $prefix/+/+/events
subscribePattern $prefix/+/+/status
publishClientReceive $prefix/+/+/events
publishClientReceive $prefix/+/+/status
publishClientSend $prefix/+/+/ack
publishClientSend $prefix/+/+/config
ACLS
if [ -n "${VARDKOLL_SERVER_MQTT_PASSWORD:-}" ]; then
    ctrl "$@" dynsec createClient "$user" -p "$VARDKOLL_SERVER_MQTT_PASSWORD"
else
    mosquitto_ctrl "$@" dynsec createClient "$user"
fi
ctrl "$@" dynsec addClientRole "$user" "$role"
echo "created broker account $user with role $role (topics under $prefix/, share group $group)" >&2
