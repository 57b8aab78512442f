# multihomed as a container image: one static binary, nothing else.
#
# The binary is built on the host first, so that building the image needs no
# registry (FROM scratch pulls nothing):
#
#   CGO_ENABLED=0 go build -trimpath -o build/out/multihomed ./cmd/multihomed
#   setcap cap_net_admin,cap_net_raw=ep build/out/multihomed
#   docker build -f Dockerfile -t multihomed-lab/multihomed:local build/out
#
# scripts/lab-docker build does all three. BASE selects another base image,
# for example one with a shell for debugging (--build-arg BASE=debian:bookworm-slim).
#
# The daemon runs as an unprivileged user (65532, numeric: scratch has no
# /etc/passwd) with CAP_NET_ADMIN (routes, rules, SO_MARK) and CAP_NET_RAW
# (ICMP probes) only; docs/operations.md, Security, says why. Docker gives a
# non-root user no ambient capabilities, so they come from the binary's
# file capabilities (the setcap above, an xattr). Docker's legacy builder
# drops that xattr on COPY (checked here: the daemon then starts with no
# capabilities and exits naming CAP_NET_ADMIN), so scripts/lab-docker build
# does not use this file for the FROM-scratch image: it `docker import`s a
# tar made with --xattrs, with the same USER, ENTRYPOINT and CMD as below,
# which keeps them. This file serves BASE images and builders that keep
# xattrs. docker-compose.yml drops every capability and adds exactly these
# two; a binary that lost its file capabilities exits at start naming what
# is missing.
#
# Its configuration is read from /etc/multihomed/multihomed.yaml; it writes
# its state in /var/lib/multihomed and its API socket in /run/multihomed,
# which must be writable by that user (docker-compose.yml mounts them).
ARG BASE=scratch
FROM ${BASE}
COPY multihomed /usr/local/bin/multihomed
# The NOC CLI, for `docker compose exec edge mhctl status`.
COPY mhctl /usr/local/bin/mhctl
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/multihomed"]
CMD ["run", "--config", "/etc/multihomed/multihomed.yaml"]
