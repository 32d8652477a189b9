# Step bootloader, the bootloaders alone: each of BOOTLOADERS (pygrub, and rxl's built-in
# one when rxl runs) reads IMAGE with pygrub's command line (simple0 output) and prints
# what it chose and how long it took, without a domain. Proves dom0's Python runs pygrub.
# Set by the rig: IMAGE, BOOTLOADERS (words LABEL:PROGRAM, PROGRAM may hold a subcommand
# after a comma).
# shellcheck source=lib.sh
. /e2e/lib.sh
cd /tmp || exit 1
mkdir -p /tmp/blstep
python3 --version 2>&1
for b in ${BOOTLOADERS}; do
    label=${b%%:*}
    prog=$(echo "${b#*:}" | tr ',' ' ')
    out=/tmp/blstep/direct-$label.out
    dir=/tmp/blstep/direct-$label.d
    rm -rf "$out" "$dir"
    : >"$out"
    mkdir -p "$dir"
    echo "--- direct $label"
    t0=$(now_ms)
    # Word splitting of prog (a program and its subcommand) is meant.
    # shellcheck disable=SC2086
    timeout 120 $prog -q --output="$out" --output-format=simple0 --output-directory="$dir" "${IMAGE}" >/tmp/blstep/direct.log 2>&1
    rc=$?
    echo "direct_ms=$(($(now_ms) - t0))"
    tail -n 8 /tmp/blstep/direct.log
    echo "direct_rc=$rc"
    tr '\0' '\n' <"$out" | sed 's/^/item /'
    for f in $(tr '\0' '\n' <"$out" | sed -n 's/^\(kernel\|ramdisk\) //p'); do
        echo "size $(wc -c <"$f")"
    done
    rm -rf "$out" "$dir"
done
echo "--- end"
