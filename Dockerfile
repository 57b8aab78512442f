# multihomed as a container image: one static binary, nothing else.
#
# The binary is built on the host first, so that building the image needs no
# registry (FROM scratch pulls nothing):
#
#   CGO_ENABLED=0 go build -trimpath -o build/out/multihomed ./cmd/multihomed
#   docker build -f Dockerfile -t multihomed-lab/multihomed:local build/out
#
# scripts/lab-docker build does both. BASE selects another base image, for
# example one with a shell for debugging (--build-arg BASE=debian:bookworm-slim).
#
# The daemon needs CAP_NET_ADMIN (kernel routes, TCP-MD5 and GTSM socket
# options) and its configuration at /etc/multihomed/multihomed.yaml.
ARG BASE=scratch
FROM ${BASE}
COPY multihomed /usr/local/bin/multihomed
# The NOC CLI, for `docker compose exec edge mhctl status`.
COPY mhctl /usr/local/bin/mhctl
ENTRYPOINT ["/usr/local/bin/multihomed"]
CMD ["run", "--config", "/etc/multihomed/multihomed.yaml"]
