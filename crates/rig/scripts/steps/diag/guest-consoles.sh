# Diagnostics: the end of each guest console log.
for f in /var/log/xen/console/*.log; do
    [ -f "$f" ] || continue
    echo "== $f"; tail -n 30 "$f"
done
true
