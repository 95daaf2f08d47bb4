#!/usr/bin/env bash
# A staging CA and the certificates signed by it: the web server's (nginx) and the broker's (Mosquitto).
#
#   deploy/tls/make-staging-certs.sh OUT_DIR WEB_NAMES BROKER_NAMES
#   deploy/tls/make-staging-certs.sh /etc/vardkoll/tls vardkoll.staging.example.se mqtt.staging.example.se,10.0.0.5
#
# NAMES are comma-separated host names or IP addresses (each goes into the subjectAltName). Writes, in
# OUT_DIR: ca.crt, ca.key (keep offline after signing), web.crt/web.key, broker.crt/broker.key. Keys are
# mode 0600. An existing CA in OUT_DIR is reused (so re-running renews the two leaf certificates: that is
# the rotation, docs/operations.md "TLS"); a leaf is valid 397 days, the CA 5 years.
# For production use the region's own CA or a public one (ACME) instead; the file names are the same.
set -euo pipefail
if [ $# -ne 3 ]; then sed -n '2,12p' "$0" >&2; exit 2; fi
out=$1 web=$2 broker=$3
mkdir -p "$out"
umask 077

san() {  # comma-separated names -> DNS:a,IP:1.2.3.4,...
    local list=() name
    IFS=, read -ra names <<<"$1"
    for name in "${names[@]}"; do
        if [[ $name =~ ^[0-9.]+$ || $name == *:* ]]; then list+=("IP:$name"); else list+=("DNS:$name"); fi
    done
    (IFS=,; echo "${list[*]}")
}

if [ ! -f "$out/ca.key" ]; then
    openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -days 1826 \
        -subj "/O=vardkoll staging/CN=vardkoll staging CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -keyout "$out/ca.key" -out "$out/ca.crt" 2>/dev/null
    echo "made the CA: $out/ca.crt" >&2
fi

leaf() {  # leaf NAME NAMES
    local name=$1 names=$2 cn=${2%%,*}
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 -subj "/O=vardkoll staging/CN=$cn" \
        -keyout "$out/$name.key.new" -out "$out/$name.csr" 2>/dev/null
    openssl x509 -req -in "$out/$name.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial -days 397 -sha256 \
        -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n' "$(san "$names")") \
        -out "$out/$name.crt.new" 2>/dev/null
    rm -f "$out/$name.csr"
    # Replace both files only once both are made: a reload never sees a key without its certificate.
    mv "$out/$name.key.new" "$out/$name.key"
    mv "$out/$name.crt.new" "$out/$name.crt"
    chmod 644 "$out/$name.crt"
    echo "made $out/$name.crt for $names (valid until $(openssl x509 -in "$out/$name.crt" -noout -enddate | cut -d= -f2))" >&2
}

leaf web "$web"
leaf broker "$broker"
chmod 644 "$out/ca.crt"
