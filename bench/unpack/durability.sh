#!/bin/bash
# Unpack of a 500 MiB tree (2000 x 256 KiB, incompressible) on a quiet disk and with a concurrent writer
# (dd ... conv=fsync loop), comparing two release binaries: $BENCH_DIR/sealbak-before and sealbak-after.
# usage: bench.sh  (expects /tmp/xbench/sealbak-before and sealbak-after)
set -e
B=${BENCH_DIR:-/tmp/xbench}
export SEALBAK_PASSWORD=bench
if [ ! -f $B/tree.sbk ]; then
  mkdir -p $B/src/tree
  for i in $(seq 1 2000); do head -c 262144 /dev/urandom > $B/src/tree/f$i; done
  $B/sealbak-after pack $B/tree.sbk $B/src/tree --insecure-test-kdf --quiet --compression none
fi
run() { # $1 binary label
  rm -rf $B/out; sync
  local t0=$(date +%s.%N)
  $B/sealbak-$1 unpack $B/tree.sbk --to $B/out --quiet
  local t1=$(date +%s.%N)
  echo "$2 $1 $(echo "$t1 - $t0" | bc)"
}
for rep in 1 2 3 4 5 6; do run before quiet; run after quiet; done
( while [ ! -f $B/stop ]; do dd if=/dev/zero of=$B/big bs=1M count=4000 conv=fsync status=none; done ) &
W=$!
sleep 3
for rep in $(seq 1 12); do run before busy; run after busy; done
touch $B/stop; wait $W || true; rm -f $B/stop $B/big
rm -rf $B/out
