#!/usr/bin/env bash
# make-certs.sh - the load balancers' TLS certificate, made once by a local certificate authority.
#
# HAProxy terminates HTTPS with .secrets/tls/server.pem (the certificate, then its private key),
# handed to lb1 and lb2 as a Compose secret: never in an image, never in git (.secrets/ is ignored).
# When that file is missing, this script makes:
#
#   .secrets/tls/ca.crt      the local CA's certificate: the one file a user trusts
#                            (curl --cacert .secrets/tls/ca.crt, or a browser's authorities list)
#   .secrets/tls/ca.key      the CA's private key (mode 600): it signs the server certificate and
#                            renewals, and never leaves this directory
#   .secrets/tls/server.pem  the server certificate, for 127.0.0.1, localhost and the virtual IPs,
#                            signed by the CA, followed by its private key (mode 600)
#
# Keys are ECDSA P-256 (Mozilla's "intermediate" profile recommends it; a handshake costs less CPU
# than with RSA 2048). The server certificate lasts 397 days (the most browsers accept from a
# public CA; a local one is not bound by it, but a short life keeps renewal exercised) and is made
# anew when it has less than 30 days left, if this CA signed it.
#
# Your own certificate: put it in .secrets/tls/server.pem (the certificate, any intermediates, then
# the key, PEM) and restart the LBs (`make up`). This script never touches a certificate its CA did
# not sign. Delete .secrets/tls/ to start again with a new CA.
#
#   LB_NET_PREFIX   the LB network's first three octets (as docker-compose.yml): the virtual IP
#                   <prefix>.10 goes into the certificate, beside the project's own stacks' ones;
#                   a certificate of ours without it is made anew (same CA)
set -euo pipefail
dir=${1:-.secrets}/tls
umask 077
mkdir -p "$dir"
ca_crt=$dir/ca.crt ca_key=$dir/ca.key server_pem=$dir/server.pem

vip=${LB_NET_PREFIX:-10.213.240}.10

# Is there a server certificate we should keep? Anything not signed by our CA is the user's own;
# ours is kept while it has 30 days (2,592,000 s) left and names this stack's virtual IP.
if [ -s "$server_pem" ]; then
  if [ ! -s "$ca_crt" ] || ! openssl verify -CAfile "$ca_crt" "$server_pem" >/dev/null 2>&1; then
    exit 0  # not ours: the user's own certificate
  fi
  if ! openssl x509 -in "$server_pem" -noout -checkend 2592000 >/dev/null; then
    echo "certs: $server_pem expires within 30 days: making a new one" >&2
  elif ! openssl x509 -in "$server_pem" -noout -checkip "$vip" | grep -q "does match"; then
    echo "certs: $server_pem does not name the virtual IP $vip: making a new one" >&2
  else
    exit 0
  fi
fi

if [ ! -s "$ca_key" ] || [ ! -s "$ca_crt" ]; then
  openssl req -x509 -new -nodes -days 3650 \
    -newkey ec -pkeyopt ec_paramgen_curve:P-256 -keyout "$ca_key" -out "$ca_crt" \
    -subj "/O=fourtier/CN=fourtier local CA ($(hostname) $(date +%F))" \
    -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  chmod 0644 "$ca_crt"  # public: the file users trust
  echo "certs: made the local CA $ca_crt (trust it: curl --cacert $ca_crt, or import it in a browser)" >&2
fi

# The loopback, the virtual IPs of the project's own stacks (10.213.240: `make up`, .241: the
# tests, .242 and .243: the load tests; docker-compose.yml, the Makefile, loadtests/harness), and
# this stack's if it has another.
sans="IP:127.0.0.1,DNS:localhost"
for prefix in 10.213.240 10.213.241 10.213.242 10.213.243; do sans="$sans,IP:$prefix.10"; done
case $vip in 10.213.24[0-3].10) ;; *) sans="$sans,IP:$vip" ;; esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
  -keyout "$tmp/server.key" -out "$tmp/server.csr" -subj "/O=fourtier/CN=localhost" 2>/dev/null
# A leaf certificate for servers only (serverAuth), for exactly these names.
printf '%s\n' "subjectAltName=$sans" "basicConstraints=critical,CA:FALSE" \
  "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tmp/ext"
openssl x509 -req -in "$tmp/server.csr" -CA "$ca_crt" -CAkey "$ca_key" -CAcreateserial \
  -CAserial "$tmp/ca.srl" -days 397 -sha256 -extfile "$tmp/ext" -out "$tmp/server.crt" 2>/dev/null
# HAProxy's `crt` takes one PEM: the certificate, then its key. Mode 644 inside a 0700 directory
# (like the database passwords in .secrets/): on the host only its owner can reach it; inside the
# LB container the secret's file must be readable by the haproxy user, whoever owns it on the host
# (root in the container has no DAC_OVERRIDE to read another user's file), and the entrypoint
# copies it for the haproxy user alone.
cat "$tmp/server.crt" "$tmp/server.key" >"$server_pem"
chmod 0644 "$server_pem"
echo "certs: made $server_pem for $sans" >&2
