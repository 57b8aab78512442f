# Host-side helpers for the container lab, sourced (bash) by
# scripts/lab-docker and scripts/ci-docker-smoke. Nothing here pulls from a
# registry: images are built locally (lab_build_images).

MH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="/usr/local/go/bin:$PATH"

# Compose project name: container and network names start with it.
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-mhlab}"
# Locally built images (the compose file's defaults for MULTIHOMED_IMAGE;
# FRR_IMAGE defaults there to a public image, here to the local one).
MH_FRR_LOCAL="multihomed-lab/frr:local"
export MULTIHOMED_IMAGE="${MULTIHOMED_IMAGE:-multihomed-lab/multihomed:local}"
export FRR_IMAGE="${FRR_IMAGE:-$MH_FRR_LOCAL}"
# Debian packages in the local FRR image: the router, link and packet tools.
MH_FRR_PACKAGES="frr,iproute2,iputils-ping,nftables,tcpdump"
MH_LAB_CACHE="${MH_LAB_CACHE:-/var/cache/multihomed-lab}"
# Prometheus (the compose file's prometheus service), from Debian packages.
export PROMETHEUS_IMAGE="${PROMETHEUS_IMAGE:-multihomed-lab/prometheus:local}"
MH_PROMETHEUS_PACKAGES="prometheus"
# Where the lab's Prometheus answers from the host: the edge's LAN address,
# reached through the lan network's bridge (docker-compose.yml).
MH_PROMETHEUS_URL="http://198.51.100.1:9090/"

# The lab's facts, for checks and narration.
MH_SITE6="2001:db8:face::/48"
MH_SITE4="198.51.100.0/24"

lab_say() { printf '\n==> %s\n' "$*"; }
lab_die() { printf '%s: %s\n' "$(basename "$0")" "$*" >&2; exit 1; }

# lab_compose ARGS... runs Compose v2 (`docker compose`) when present, else
# docker-compose 1.29, on the repository's docker-compose.yml (MH_COMPOSE_FILE
# names another: lab_pa sets it to docker-compose.pa.yml).
lab_compose() {
  if [ -z "${MH_COMPOSE:-}" ]; then
    if docker compose version >/dev/null 2>&1; then
      MH_COMPOSE="docker compose"
    elif command -v docker-compose >/dev/null; then
      MH_COMPOSE="docker-compose"
    else
      lab_die "neither 'docker compose' nor docker-compose is installed (Debian: apt-get install docker-compose)"
    fi
  fi
  $MH_COMPOSE -f "${MH_COMPOSE_FILE:-$MH_ROOT/docker-compose.yml}" "$@"
}

lab_need_docker() {
  command -v docker >/dev/null || lab_die "docker is not installed (Debian: apt-get install docker.io docker-compose)"
  docker info >/dev/null 2>&1 || lab_die "cannot talk to the Docker daemon (is dockerd running, and may this user use it?)"
}

lab_image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

# lab_debian_mirror prints the Debian archive apt uses here (DEBIAN_MIRROR
# overrides), so debootstrap reaches the same mirror apt-get does.
lab_debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    uri=$(awk 'tolower($1) == "uris:" && $2 ~ /\/debian\/?$/ { print $2; exit }' "$f")
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    uri=$(sed -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $2 ~ /\/debian\/?$/ { print $2; exit }')
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  echo "http://deb.debian.org/debian"
}

# lab_build_debian_image IMAGE PACKAGES NAME makes IMAGE from Debian
# packages: debootstrap a minimal bookworm root with PACKAGES (comma
# separated), tar it (cached under $MH_LAB_CACHE as NAME-bookworm-rootfs.tar,
# so a removed image comes back in seconds) and `docker import` it, labelled
# org.multihomed.lab=NAME. Skipped when the image exists, unless MH_FORCE=1.
lab_build_debian_image() {
  local image=$1 packages=$2 name=$3
  if lab_image_exists "$image" && [ "${MH_FORCE:-0}" != 1 ]; then
    echo "$image: present, not rebuilt (MH_FORCE=1 rebuilds)"
    return
  fi
  local tarball="$MH_LAB_CACHE/$name-bookworm-rootfs.tar"
  if [ ! -s "$tarball" ] || [ "$(cat "$tarball.packages" 2>/dev/null)" != "$packages" ] || [ "${MH_FORCE:-0}" = 1 ]; then
    command -v debootstrap >/dev/null || lab_die "debootstrap is needed to build $image (apt-get install debootstrap)"
    [ "$(id -u)" = 0 ] || lab_die "building $image needs root (debootstrap)"
    local mirror root
    mirror=$(lab_debian_mirror)
    root=$(mktemp -d /tmp/mhlab-rootfs.XXXXXX)
    echo "debootstrap bookworm from $mirror with $packages (a few minutes, once)"
    if ! debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" > "$root.log" 2>&1; then
      tail -20 "$root.log" >&2
      rm -rf "$root" "$root.log"
      lab_die "debootstrap failed (log above)"
    fi
    # Package caches, lists and docs are not needed at run time.
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
      "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info
    mkdir -p "$MH_LAB_CACHE"
    tar --numeric-owner --xattrs -C "$root" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    echo "$packages" > "$tarball.packages"
    rm -rf "$root" "$root.log"
  else
    echo "using cached root file system $tarball"
  fi
  docker import -c 'CMD ["/bin/bash"]' -c "LABEL org.multihomed.lab=$name" \
    -m "Debian bookworm minbase with $packages" "$tarball" "$image" >/dev/null
  echo "$image: imported"
}

# lab_build_frr makes $MH_FRR_LOCAL, the routers' and hosts' image (set
# FRR_IMAGE to an FRR image you have instead).
lab_build_frr() { lab_build_debian_image "$MH_FRR_LOCAL" "$MH_FRR_PACKAGES" frr; }

# lab_build_prometheus makes $PROMETHEUS_IMAGE, Debian's Prometheus, for the
# compose file's prometheus service.
lab_build_prometheus() { lab_build_debian_image "$PROMETHEUS_IMAGE" "$MH_PROMETHEUS_PACKAGES" prometheus; }

# The PA lab's tools (docker-compose.pa.yml): BIND 9 for the zone's primary,
# dig for the internet host, ip6tables for the daemon's kernel NPTv6 backend
# and the internet host's per-prefix counters.
export PA_IMAGE="${PA_IMAGE:-multihomed-lab/pa:local}"
MH_PA_PACKAGES="bind9,bind9-dnsutils,iproute2,iptables,iputils-ping,conntrack"

# lab_build_pa makes $PA_IMAGE from Debian packages.
lab_build_pa() { lab_build_debian_image "$PA_IMAGE" "$MH_PA_PACKAGES" pa; }

# lab_build_multihomed builds the static daemon on the host and the
# FROM-scratch image around it (MULTIHOMED_BASE picks another base).
lab_build_multihomed() {
  command -v go >/dev/null || lab_die "Go 1.26 or newer is needed at /usr/local/go or on PATH"
  mkdir -p "$MH_ROOT/build/out"
  (cd "$MH_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o build/out/multihomed ./cmd/multihomed)
  (cd "$MH_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o build/out/mhctl ./cmd/mhctl)
  # The flow meter runs in the end hosts (mounted from build/out).
  (cd "$MH_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o build/out/mhflow ./cmd/mhflow)
  "$MH_ROOT/build/out/multihomed" config validate "$MH_ROOT/compose/edge/multihomed.yaml"
  # The image runs as a non-root user, which Docker gives no ambient
  # capabilities: the binary carries them as file capabilities. `docker
  # build` (the legacy builder here) drops that xattr on COPY, so the
  # FROM-scratch image is imported from a tar that keeps it (--xattrs);
  # the Dockerfile says the same for a BuildKit that keeps xattrs.
  command -v setcap >/dev/null || lab_die "setcap is needed (Debian package libcap2-bin)"
  local stage="$MH_ROOT/build/out/image-root"
  rm -rf "$stage" && mkdir -p "$stage/usr/local/bin"
  cp "$MH_ROOT/build/out/multihomed" "$MH_ROOT/build/out/mhctl" "$stage/usr/local/bin/"
  setcap cap_net_admin,cap_net_raw=ep "$stage/usr/local/bin/multihomed"
  if [ -n "${MULTIHOMED_BASE:-}" ] && [ "$MULTIHOMED_BASE" != scratch ]; then
    docker build -q --build-arg "BASE=$MULTIHOMED_BASE" -f "$MH_ROOT/Dockerfile" \
      --label org.multihomed.lab=multihomed -t "$MULTIHOMED_IMAGE" "$stage/usr/local/bin" >/dev/null
  else
    tar --xattrs --xattrs-include='security.capability' -C "$stage" -cf "$MH_ROOT/build/out/multihomed-image.tar" usr
    docker import -c 'USER 65532:65532' -c 'ENTRYPOINT ["/usr/local/bin/multihomed"]' \
      -c 'CMD ["run", "--config", "/etc/multihomed/multihomed.yaml"]' -c 'LABEL org.multihomed.lab=multihomed' \
      -m "multihomed, FROM scratch, file capabilities kept" "$MH_ROOT/build/out/multihomed-image.tar" "$MULTIHOMED_IMAGE" >/dev/null
  fi
  echo "$MULTIHOMED_IMAGE: built"
}

# lab_build_images builds what the lab runs, pulling nothing. With FRR_IMAGE
# set to something else than the local image, that image is used as is.
lab_build_images() {
  if [ "$FRR_IMAGE" = "$MH_FRR_LOCAL" ]; then
    lab_build_frr
  elif ! lab_image_exists "$FRR_IMAGE"; then
    echo "FRR_IMAGE=$FRR_IMAGE is not here; compose will pull it"
  fi
  lab_build_prometheus
  lab_build_multihomed
}

# lab_wait SECONDS DESCRIPTION COMMAND... polls COMMAND every half second.
lab_wait() {
  local secs=$1 what=$2
  shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then
      echo "timed out after ${secs}s waiting for: $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# lab_vtysh NODE COMMAND... runs vtysh commands on an FRR node.
lab_vtysh() {
  local node=$1
  shift
  local args=()
  for c in "$@"; do args+=(-c "$c"); done
  lab_compose exec -T "$node" vtysh "${args[@]}"
}

# lab_bgp_state NODE NEIGHBOR prints FRR's state for that session.
lab_bgp_state() {
  lab_vtysh "$1" "show bgp neighbors $2 json" | grep -o '"bgpState":"[A-Za-z]*"' | head -1 | cut -d'"' -f4
}

lab_established() { [ "$(lab_bgp_state "$1" "$2")" = Established ]; }

# lab_transit_paths PREFIX prints the AS paths the transit holds for
# PREFIX, one per line (nothing when it has none).
lab_transit_paths() {
  local fam=ipv6
  case $1 in *.*) fam=ipv4 ;; esac
  lab_vtysh transit "show bgp $fam unicast $1 json" | tr -d '\n' |
    grep -oE '"aspath": *\{ *"string": *"[^"]*"' | sed -E 's/.*"([^"]*)"$/\1/' || true
}

# lab_transit_has PREFIX PATH...: the transit holds exactly these AS paths.
lab_transit_has() {
  local want got
  want=$(printf '%s\n' "${@:2}" | sort)
  got=$(lab_transit_paths "$1" | sort)
  [ "$want" = "$got" ]
}

# The edge's sessions as its ISPs see them (FRR side).
MH_EDGE_SESSIONS="isp-a:2001:db8:1000:1::2 isp-a:198.18.1.2 isp-b:2001:db8:2000:1::2 isp-b:198.18.2.2"

lab_all_established() {
  local s
  for s in $MH_EDGE_SESSIONS; do
    lab_established "${s%%:*}" "${s#*:}" || return 1
  done
}

# lab_edge_dump asks the daemon for its state (SIGUSR1, until mhctl exists)
# and prints the lines it logged.
lab_edge_dump() {
  local id since
  id=$(lab_compose ps -q edge)
  [ -n "$id" ] || { echo "the edge container is not running" >&2; return 1; }
  since=$(date +%s.%N)
  docker kill -s USR1 "$id" >/dev/null
  sleep 1
  docker logs --since "$since" "$id" 2>&1 | grep 'msg="state: ' || true
}

# lab_edge_session_states prints "uplink peer state" for each of the
# daemon's sessions, from a SIGUSR1 dump.
lab_edge_session_states() {
  lab_edge_dump | grep 'msg="state: session"' |
    sed -E 's/.* uplink=([^ ]+) peer=([^ ]+) state=([^ ]+).*/\1 \2 \3/'
}

# lab_edge_uplink_down UPLINK: none of the daemon's sessions on UPLINK is
# established.
lab_edge_uplink_down() {
  local states
  states=$(lab_edge_session_states)
  [ -n "$states" ] && ! grep -q "^$1 .* established$" <<<"$states"
}

# lab_edge_uplink_up UPLINK: every session of UPLINK is established.
lab_edge_uplink_up() {
  local states
  states=$(lab_edge_session_states | grep "^$1 ")
  [ -n "$states" ] && ! grep -qv ' established$' <<<"$states"
}

# lab_link NODE:DEV up|down sets a link's state inside a container.
lab_link() {
  lab_compose exec -T "${1%%:*}" ip link set dev "${1#*:}" "$2"
}

# lab_cut ISP / lab_restore ISP: carrier loss on the uplink to that ISP,
# both ends, as when the access line fails (the edge's end is set in
# edge-ns, which owns the edge's network namespace).
lab_uplink_ends() {
  case $1 in
    isp-a) echo "edge-ns:eth-a isp-a:eth-edge" ;;
    isp-b) echo "edge-ns:eth-b isp-b:eth-edge" ;;
    *) lab_die "unknown ISP '$1' (isp-a or isp-b)" ;;
  esac
}
lab_cut() {
  local e
  for e in $(lab_uplink_ends "$1"); do lab_link "$e" down; done
}
lab_restore() {
  local e
  for e in $(lab_uplink_ends "$1"); do lab_link "$e" up; done
}

# lab_up builds missing images, starts the lab and waits for the sessions.
lab_up() {
  lab_build_images
  lab_compose up -d
  lab_wait 90 "all four edge sessions Established at the ISPs" lab_all_established || {
    lab_compose ps
    lab_compose logs --tail 30
    return 1
  }
}

lab_down() {
  lab_compose down --volumes --remove-orphans --timeout 5
}

# lab_rx NODE DEV... prints the links' received-packet counters, one line.
lab_rx() {
  local node=$1
  shift
  local files=()
  for d in "$@"; do files+=("/sys/class/net/$d/statistics/rx_packets"); done
  lab_compose exec -T "$node" cat "${files[@]}" | tr -d '\r' | paste -sd' '
}

# lab_inbound_uplink sends 50 pings from the internet host to the LAN host
# (IPv6) and prints the uplink they entered the edge through: "isp-a",
# "isp-b" or "none". It checks the inbound data path the transit chose: the
# packets really cross transit, an ISP and the edge to the LAN host. (The
# replies get no further than the edge: it has no egress routes until the
# controller installs them, so ping itself reports loss.)
lab_inbound_uplink() {
  local a0 b0 l0 a1 b1 l1
  read -r a0 b0 <<<"$(lab_rx edge-ns eth-a eth-b)"
  l0=$(lab_rx lan eth0)
  lab_compose exec -T inet ping -6 -q -c 50 -i 0.01 -W 1 2001:db8:face:1::10 >/dev/null 2>&1 || true
  read -r a1 b1 <<<"$(lab_rx edge-ns eth-a eth-b)"
  l1=$(lab_rx lan eth0)
  # Keepalives add a few packets per link; 50 pings stand out.
  if [ $((l1 - l0)) -lt 50 ]; then
    echo none
  elif [ $((a1 - a0)) -ge 50 ] && [ $((b1 - b0)) -lt 50 ]; then
    echo isp-a
  elif [ $((b1 - b0)) -ge 50 ] && [ $((a1 - a0)) -lt 50 ]; then
    echo isp-b
  else
    echo "unclear (eth-a +$((a1 - a0)), eth-b +$((b1 - b0)), lan +$((l1 - l0)))"
  fi
}

# lab_egress_device prints the device the edge's kernel uses toward the
# internet host: the default route multihomed installed (egress).
lab_egress_device() {
  lab_compose exec -T edge-ns ip -6 route get 2001:db8:9000:1::10 2>/dev/null |
    awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}'
}
lab_egress_is() { [ "$(lab_egress_device)" = "$1" ]; }

# lab_flow_start runs the flow meter (1 kHz UDP both ways) between the
# internet host and the LAN host for $1 seconds, in the background; each
# writes its report to /tmp/mhflow.out in its container.
lab_flow_start() {
  lab_compose exec -T -d inet sh -c "/opt/mh/mhflow --bind '[2001:db8:9000:1::10]:9' --peer '[2001:db8:face:1::10]:9' --for ${1}s > /tmp/mhflow.out 2>&1"
  lab_compose exec -T -d lan sh -c "/opt/mh/mhflow --bind '[2001:db8:face:1::10]:9' --peer '[2001:db8:9000:1::10]:9' --for ${1}s > /tmp/mhflow.out 2>&1"
}
lab_flow_done() {
  lab_compose exec -T inet grep -q '^mhflow:' /tmp/mhflow.out && lab_compose exec -T lan grep -q '^mhflow:' /tmp/mhflow.out
}
# lab_flow_report prints both directions' reports.
lab_flow_report() {
  echo "  inbound  (internet host -> LAN host): $(lab_compose exec -T lan cat /tmp/mhflow.out | sed 's/^mhflow: //')"
  echo "  outbound (LAN host -> internet host): $(lab_compose exec -T inet cat /tmp/mhflow.out | sed 's/^mhflow: //')"
}

# lab_mhctl runs mhctl inside the edge container (the daemon's API socket).
lab_mhctl() { lab_compose exec -T edge /usr/local/bin/mhctl "$@"; }

# lab_prom_query EXPR prints the result of an instant query on the lab's
# Prometheus (promtool inside its container), one series a line; nothing
# when the result is empty.
lab_prom_query() { lab_compose exec -T prometheus promtool query instant "${MH_PROMETHEUS_URL%/}" "$1"; }

# lab_prom_has EXPR: the query returns at least one series.
lab_prom_has() { [ -n "$(lab_prom_query "$1" | tr -d '\r')" ]; }

# --- The PA variant (docker-compose.pa.yml, docs/pa-mode.md) ---------------
#
# lab_pa COMMAND... runs a lab_* function (or lab_compose) on the PA lab:
# its compose file and project (the PI project's name with -pa), e.g.
# `lab_pa lab_compose ps`, `lab_pa lab_cut isp-a`.
MH_PA_PROJECT="${COMPOSE_PROJECT_NAME}-pa"
lab_pa() { MH_COMPOSE_FILE="$MH_ROOT/docker-compose.pa.yml" COMPOSE_PROJECT_NAME="$MH_PA_PROJECT" "$@"; }

# The PA lab's facts: the internal prefix, each ISP's PA prefix, the zone's
# primary and the published name with its internal address.
MH_PA_INTERNAL="fd7a:5e1d:9c00::/48"
MH_PA_PREFIX_A="2001:db8:1001::/48"
MH_PA_PREFIX_B="2001:db8:2001::/48"
MH_PA_DNS="2001:db8:9000:2::53"
MH_PA_NAME="www.site.example"
MH_PA_WWW="fd7a:5e1d:9c00:1::80"

# lab_pa_build builds what the PA lab runs: the FRR and PA images and the
# daemon, mhctl and nptv6ctl in build/out (mounted into the edge). The
# daemon checks the lab's configuration, with the key file's path pointed
# at the repository's copy.
lab_pa_build() {
  if [ "$FRR_IMAGE" = "$MH_FRR_LOCAL" ]; then
    lab_build_frr
  fi
  lab_build_pa
  command -v go >/dev/null || lab_die "Go 1.26 or newer is needed at /usr/local/go or on PATH"
  mkdir -p "$MH_ROOT/build/out"
  local c
  for c in multihomed mhctl nptv6ctl; do
    (cd "$MH_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "build/out/$c" "./cmd/$c")
  done
  sed "s#/etc/multihomed/tsig.key#$MH_ROOT/compose/pa/dns/tsig.key#" "$MH_ROOT/compose/pa/edge/multihomed.yaml" > "$MH_ROOT/build/out/pa-multihomed.yaml"
  "$MH_ROOT/build/out/multihomed" config validate "$MH_ROOT/build/out/pa-multihomed.yaml"
}

# lab_pa_translate PREFIX prints www's address translated into PREFIX
# (RFC 6296, nptv6ctl: the same core as the daemon's datapath).
lab_pa_translate() {
  "$MH_ROOT/build/out/nptv6ctl" translate "$MH_PA_INTERNAL" "$1" "$MH_PA_WWW" | awk '$1 == "outbound" { print $NF }'
}

# lab_pa_dig prints the AAAA records the zone's primary holds for www, as
# the internet host asks it (no recursion), sorted, one a line.
lab_pa_dig() {
  lab_pa lab_compose exec -T inet dig +short +norecurse +time=1 +tries=1 "@$MH_PA_DNS" "$MH_PA_NAME" AAAA |
    tr -d '\r' | sort
}

# lab_pa_published ADDR...: the primary holds exactly these AAAA records.
lab_pa_published() {
  local want got
  want=$(printf '%s\n' "$@" | sort)
  got=$(lab_pa_dig)
  [ "$want" = "$got" ]
}

# lab_pa_inet_counts prints the echo requests the internet host received
# from ISP-A's and from ISP-B's PA prefix (compose/pa/bin/inet's rules).
lab_pa_inet_counts() {
  lab_pa lab_compose exec -T inet ip6tables -nvxL INPUT | tr -d '\r' |
    awk -v a="$MH_PA_PREFIX_A" -v b="$MH_PA_PREFIX_B" '
      { for (i = 2; i <= NF; i++) { if ($i == a) ca = $1; if ($i == b) cb = $1 } }
      END { print ca + 0, cb + 0 }'
}

# lab_pa_outbound_prefix sends 20 pings (a new flow) from the LAN host to
# the internet host and prints which PA prefix they arrived from: "isp-a",
# "isp-b", "none" or "unclear (...)".
lab_pa_outbound_prefix() {
  local a0 b0 a1 b1
  read -r a0 b0 <<<"$(lab_pa_inet_counts)"
  lab_pa lab_compose exec -T lan ping -6 -q -c 20 -i 0.02 -W 1 2001:db8:9000:1::10 >/dev/null 2>&1 || true
  read -r a1 b1 <<<"$(lab_pa_inet_counts)"
  if [ $((a1 - a0)) -ge 20 ] && [ $((b1 - b0)) = 0 ]; then
    echo isp-a
  elif [ $((b1 - b0)) -ge 20 ] && [ $((a1 - a0)) = 0 ]; then
    echo isp-b
  elif [ $((a1 - a0)) = 0 ] && [ $((b1 - b0)) = 0 ]; then
    echo none
  else
    echo "unclear (from ISP-A's prefix +$((a1 - a0)), from ISP-B's +$((b1 - b0)))"
  fi
}
lab_pa_outbound_is() { [ "$(lab_pa_outbound_prefix)" = "$1" ]; }

# lab_pa_restore ISP brings the uplink back (lab_restore) and the ISP's
# static route to the PA prefix with it: the kernel deleted it when the
# link went down.
lab_pa_restore() {
  lab_pa lab_restore "$1"
  case $1 in
    isp-a) lab_pa lab_compose exec -T isp-a ip -6 route replace "$MH_PA_PREFIX_A" via 2001:db8:1000:1::2 dev eth-edge ;;
    isp-b) lab_pa lab_compose exec -T isp-b ip -6 route replace "$MH_PA_PREFIX_B" via 2001:db8:2000:1::2 dev eth-edge ;;
  esac
}

# lab_pa_up builds what is missing, starts the PA lab and waits until the
# primary publishes www via both ISPs.
lab_pa_up() {
  lab_pa_build
  lab_pa lab_compose up -d
  lab_wait 90 "$MH_PA_NAME published via both ISPs" \
    lab_pa_published "$(lab_pa_translate "$MH_PA_PREFIX_A")" "$(lab_pa_translate "$MH_PA_PREFIX_B")" || {
    lab_pa lab_compose ps
    lab_pa lab_compose logs --tail 30
    return 1
  }
}

lab_pa_down() { lab_pa lab_compose down --volumes --remove-orphans --timeout 5; }

# ---- Gray failure (either lab) ----

# lab_gray NODE makes an FRR node drop every packet it forwards while its
# own BGP sessions stay up (a "gray" failure: the edge's probes through it
# fail, BGP does not notice); lab_gray_repair NODE undoes it.
lab_gray() {
  lab_gray_repair "$1"
  lab_compose exec -T "$1" nft add table inet mhfault
  lab_compose exec -T "$1" nft add chain inet mhfault mhforward '{ type filter hook forward priority 0; policy accept; }'
  lab_compose exec -T "$1" nft add rule inet mhfault mhforward drop
}
lab_gray_repair() { lab_compose exec -T "$1" nft delete table inet mhfault >/dev/null 2>&1 || true; }

# ---- The two-edge lab (docker-compose.two-edge.yml, docs/lab-docker.md) ----

# Its compose project: the single-edge lab's name plus -2e.
MH_TWO_EDGE_PROJECT="${MH_TWO_EDGE_PROJECT:-$COMPOSE_PROJECT_NAME-2e}"

# lab_two_edge_mode points lab_compose, and so every helper above, at the
# two-edge lab for the rest of the script.
lab_two_edge_mode() {
  [ -n "${MH_COMPOSE:-}" ] || lab_compose version >/dev/null
  export COMPOSE_PROJECT_NAME="$MH_TWO_EDGE_PROJECT"
  lab_compose() { $MH_COMPOSE -f "$MH_ROOT/docker-compose.two-edge.yml" "$@"; }
}

# The edges' sessions as their neighbours see them: ISP-A with edge-1,
# ISP-B with edge-2, the core with both (FRR side, NODE:NEIGHBOR).
MH_TWO_EDGE_SESSIONS="isp-a:2001:db8:1000:1::2 isp-a:198.18.1.2 isp-b:2001:db8:2000:1::2 isp-b:198.18.2.2
core:2001:db8:face:11::1 core:198.51.100.33 core:2001:db8:face:12::1 core:198.51.100.41"

lab2_all_established() {
  local s
  for s in $MH_TWO_EDGE_SESSIONS; do
    lab_established "${s%%:*}" "${s#*:}" || return 1
  done
}

# lab2_mhctl EDGE ARGS... runs mhctl in edge-1 or edge-2.
lab2_mhctl() {
  local e=$1
  shift
  lab_compose exec -T "$e" /usr/local/bin/mhctl "$@"
}

# lab2_remote_state EDGE UPLINK prints the state EDGE has learned over iBGP
# for the other edge's UPLINK (mhctl status -o json, remoteUplinks), with
# " stale" appended while graceful restart keeps it; nothing when unknown.
lab2_remote_state() {
  lab2_mhctl "$1" -o json status | tr -d '\r' |
    jq -r --arg u "$2" '.remoteUplinks[]? | select(.uplink == $u) | .state + (if .stale then " stale" else "" end)'
}
lab2_remote_is() { [ "$(lab2_remote_state "$1" "$2")" = "$3" ]; }

# lab2_local_state EDGE UPLINK prints EDGE's own decided state for UPLINK.
lab2_local_state() {
  lab2_mhctl "$1" uplinks | awk -v u="$2" '$1 == u { print $2 }'
}
lab2_local_is() { [ "$(lab2_local_state "$1" "$2")" = "$3" ]; }

# lab2_core_default prints the core's kernel IPv6 default route's device:
# eth-e1 (via edge-1) or eth-e2 (via edge-2); nothing without one.
lab2_core_default() {
  lab_compose exec -T core ip -6 route show default | tr -d '\r' |
    awk '{for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit }}'
}
lab2_core_default_is() { [ "$(lab2_core_default)" = "$1" ]; }
# lab2_core_default4_is DEV: the same for IPv4.
lab2_core_default4_is() {
  lab_compose exec -T core ip -4 route show default | grep -q "dev $1 "
}

# lab2_lan_reaches_inet: the LAN host pings the internet host (each ping
# crosses the site both ways). IPv6 only: Docker filters IPv4 across the
# lab (docker-compose.two-edge.yml).
lab2_lan_reaches_inet() {
  lab_compose exec -T lan ping -6 -c 2 -i 0.2 -W 1 2001:db8:9000:1::10 >/dev/null
}

# lab2_up starts the two-edge lab on the images that exist (building only
# what is missing) and waits for every session.
lab2_up() {
  local img
  for img in "$FRR_IMAGE" "$MULTIHOMED_IMAGE"; do
    lab_image_exists "$img" || { lab_build_images; break; }
  done
  [ -x "$MH_ROOT/build/out/mhflow" ] || lab_build_multihomed
  lab_compose up -d
  lab_wait 90 "the edges' sessions Established at the ISPs and the core" lab2_all_established || {
    lab_compose ps
    lab_compose logs --tail 30
    return 1
  }
}
