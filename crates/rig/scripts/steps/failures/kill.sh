# Step failures: rxl create killed with SIGKILL as soon as its domain exists.
ids() { xl list | awk 'NR > 1 { print $(NF - 4) }'; }
before=$(ids)
rxl create /e2e/fail/killed.cfg >/tmp/killed.out 2>&1 &
pid=$!
new=
i=0
while [ -z "$new" ]; do
    for id in $(ids); do
        # echo joins the ids onto one line.
        # shellcheck disable=SC2086,SC2116
        case " $(echo $before) " in *" $id "*) ;; *) new=$id ;; esac
    done
    [ -n "$new" ] && break
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 $pid 2>/dev/null; then
        echo "no new domain appeared while rxl create ran"; cat /tmp/killed.out; exit 1
    fi
    sleep 0.05
done
kill -9 $pid
wait $pid 2>/dev/null
echo "killed rxl create (pid $pid) with domain $new present"
echo "new=$new"
echo "$new" >/tmp/killed-id
