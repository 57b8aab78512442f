# Sourced by the lab's container entrypoints (POSIX sh; runs on Debian and on
# busybox-based images alike).
#
# Docker names a container's interfaces eth0, eth1, ... in an order it does
# not promise, so each node renames its links after the addresses Docker gave
# them: the names then match the namespace lab (internal/lab) and the edge's
# configuration (interface: eth-a). IPv6 addresses survive the brief link
# down because compose sets net.ipv6.conf.all.keep_addr_on_down=1.

# iface_of ADDR prints the interface that holds ADDR, or nothing.
iface_of() {
  ip -o addr show | awk -v a="$1" '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }'
}

# rename_links ADDR=NAME... renames the interface holding each ADDR to NAME.
rename_links() {
  for pair in "$@"; do
    addr=${pair%%=*}
    name=${pair#*=}
    dev=$(iface_of "$addr")
    dev=${dev%%@*}
    if [ -z "$dev" ]; then
      echo "lab: no interface holds $addr (is this container on the right compose network?)" >&2
      ip -o addr show >&2
      exit 1
    fi
    if [ "$dev" != "$name" ]; then
      ip link set dev "$dev" down
      ip link set dev "$dev" name "$name"
      ip link set dev "$name" up
      echo "lab: $dev ($addr) renamed $name"
    fi
  done
  # Wait (up to 5 s) for duplicate address detection to finish, so that
  # daemons started next can bind their IPv6 addresses at once.
  i=0
  while [ -n "$(ip -6 addr show tentative)" ] && [ $i -lt 50 ]; do
    sleep 0.1
    i=$((i + 1))
  done
}
