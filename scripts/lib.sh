# Shared by scripts/test and scripts/demo: Go on PATH and the Debian
# packages the lab and the tests need, installed only when missing.

export PATH="/usr/local/go/bin:$PATH"

# Debian packages: routers for the lab (frr, bird2; exabgp for the edge
# comparison, mhlab bench --edge), namespace and packet
# tools (iproute2, nftables, iputils-ping), ip6tables for the NPTv6 kernel
# backend (iptables), protoc for the generated-code check (protobuf-compiler),
# BIND 9 and dig for the PA-mode DNS tests (bind9, dnsutils), the
# conntrack tool to inspect NAT44 state by hand (conntrack),
# systemd-analyze and man for the unit and package checks (systemd, man-db),
# promtool for the alert rules (prometheus).
MH_PACKAGES="frr bird2 exabgp iproute2 nftables iputils-ping iptables protobuf-compiler bind9 dnsutils conntrack systemd man-db prometheus"

mh_need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "$0: needs root (network namespaces, routers); run it with sudo" >&2
    exit 1
  fi
}

mh_install_deps() {
  if ! command -v go >/dev/null; then
    echo "$0: Go 1.26 or newer is needed at /usr/local/go or on PATH" >&2
    exit 1
  fi
  local missing=""
  for p in $MH_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    echo "==> installing:$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
}
