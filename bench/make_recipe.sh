#!/bin/sh
# make_recipe.sh N: a recipe of N test-component nodes, all needed by the
# one target: a third are Source nodes, the rest a chain of Echo and Join
# nodes that takes in every source in turn.
n=${1:-50}
s=$((n / 3))
[ "$s" -ge 1 ] || s=1
echo "version: 1"
echo "name: bench$n"
echo "train:"
echo "  targets: [n$((n - 1))]"
echo "  nodes:"
i=0
while [ "$i" -lt "$s" ]; do
	echo "    n$i: {component: Source, config: {value: v$i}}"
	i=$((i + 1))
done
prev=n0
k=1
while [ "$i" -lt "$n" ]; do
	if [ "$k" -lt "$s" ] && [ $(((i - s) % 2)) -eq 0 ]; then
		echo "    n$i: {component: Join, needs: {a: $prev, b: n$k}}"
		k=$((k + 1))
	else
		echo "    n$i: {component: Echo, needs: {in: $prev}, config: {suffix: s$i}}"
	fi
	prev=n$i
	i=$((i + 1))
done
