#!/bin/sh
# fixed-cost.sh BIN OUTDIR KERNEL: the fixed cost of `rxl list`, `rxl create` and
# `rxl destroy` of a small PVH guest (KERNEL: the test guest's hello.elf, built by
# tests/guests/hello/build.sh DIR) on a fresh simulated host in OUTDIR/host, with the host
# monitor running and two other guests. Prints one line per command: median wall time,
# max RSS and minor faults of 7 runs (/usr/bin/time), instructions (callgrind) in all and
# inside the simulator, syscalls (strace -c -f) and processes/threads started.
# Needs valgrind, strace, GNU time. docs/benchmarks.md, "Fixed cost of a command".
set -eu
BIN=$1; OUT=$2; KERNEL=$3
rm -rf "$OUT"; mkdir -p "$OUT"
H=$OUT/host
CFG=$OUT/small.cfg
printf 'name = "small"\ntype = "pvh"\nmemory = 32\nvcpus = 1\nkernel = "%s"\n' "$KERNEL" > "$CFG"
R() { "$BIN" --sim "$H" "$@"; }
for n in a b; do
  sed "s/\"small\"/\"$n\"/" "$CFG" > "$OUT/$n.cfg"
  R create -q "$OUT/$n.cfg" >/dev/null
done
tm() {
  label=$1; shift
  s=$(date +%s%N)
  /usr/bin/time -f "%M %R" -o "$OUT/t.tmp" "$@" >/dev/null 2>>"$OUT/err.log"
  e=$(date +%s%N)
  echo "$label $(( (e - s) / 1000 )) $(cat "$OUT/t.tmp")" >> "$OUT/times"
}
for _ in 1 2 3 4 5 6 7; do
  tm list "$BIN" --sim "$H" list
  tm create "$BIN" --sim "$H" create -q "$CFG"
  tm destroy "$BIN" --sim "$H" destroy small
done
one() {
  label=$1; kind=$2; shift 2
  case $kind in
    cg) valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$label" "$@" \
          >/dev/null 2>"$OUT/cg.$label.log" ;;
    cgsim) valgrind --tool=callgrind --callgrind-out-file="$OUT/cgsim.$label" \
          '--toggle-collect=sim::hv::<impl*' '--toggle-collect=sim::store::<impl*' \
          '--toggle-collect=sim::SimHost::open' "$@" >/dev/null 2>"$OUT/cgsim.$label.log" ;;
    st) strace -f -c -o "$OUT/strace.$label" "$@" >/dev/null 2>&1 ;;
    cl) strace -f -qq -e trace=clone,clone3,fork,vfork,execve -o "$OUT/clones.$label" "$@" \
          >/dev/null 2>&1 ;;
  esac
}
for kind in cg cgsim st cl; do
  one list "$kind" "$BIN" --sim "$H" list
  one create "$kind" "$BIN" --sim "$H" create -q "$CFG"
  one destroy "$kind" "$BIN" --sim "$H" destroy small
done
R destroy a
R destroy b
# The host monitor the first create started.
kill "$(sed -n 's/.*"pid": *\([0-9]*\).*/\1/p' "$H/rxl/monitord.pid")" 2>/dev/null || true
med() { grep "^$1 " "$OUT/times" | awk -v f="$2" '{print $f}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for c in list create destroy; do
  ir=$(grep -m1 '^summary:' "$OUT/cg.$c" | awk '{print $2}')
  irsim=$(grep -m1 '^summary:' "$OUT/cgsim.$c" | awk '{print $2}')
  sc=$(grep ' total$' "$OUT/strace.$c" | awk '{print $(NF-2)}')
  cl=$(grep -c 'clone\|fork' "$OUT/clones.$c" || true)
  printf '%-8s wall_us=%s maxrss_kib=%s minflt=%s Ir=%s Ir_sim=%s syscalls=%s clones=%s\n' \
    "$c" "$(med "$c" 2)" "$(med "$c" 3)" "$(med "$c" 4)" "$ir" "$irsim" "$sc" "$cl"
done
