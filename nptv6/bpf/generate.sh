#!/bin/sh
# Regenerates the eBPF objects and their Go bindings (npt_bpfel.go,
# npt_bpfeb.go and the .o files) from npt.c. Needs Debian's clang and the
# kernel and libbpf headers:
#   apt-get install clang llvm libbpf-dev linux-libc-dev
# The generated files are committed, so building the daemon needs none of it.
set -eu
cd "$(dirname "$0")/.."
arch_inc=/usr/include/$(uname -m)-linux-gnu
GOPACKAGE=nptv6 go run github.com/cilium/ebpf/cmd/bpf2go \
	-cc clang -cflags "-O2 -g -Wall -Werror -I$arch_inc" \
	-target bpfel,bpfeb \
	-type npt_key -type npt_mapping -type npt_counters -type npt_iface \
	-output-dir . npt bpf/npt.c
