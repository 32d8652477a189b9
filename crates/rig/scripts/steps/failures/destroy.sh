# Step failures: rxl destroy of the domain the killed create left.
id=$(cat /tmp/killed-id) || exit 1
echo "destroying $id"
rxl destroy "$id"
rc=$?
echo "== after"
xl list
exit $rc
