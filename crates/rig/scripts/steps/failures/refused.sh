# Step failures: a create rxl must refuse; xl list before and after, to show no domain left.
# Set by the rig: CFG.
xl list >/tmp/fail-before
rxl create "$CFG"
rc=$?
echo "== before"
cat /tmp/fail-before
echo "== after"
xl list
exit $rc
