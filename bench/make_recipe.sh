#!/bin/sh
# make_recipe.sh N: a recipe of N test-component nodes: a layer of Source
# nodes feeding chains of Echo and Join nodes, ending in one target.
n=${1:-50}
echo "version: 1"
echo "name: bench$n"
echo "train:"
echo "  targets: [n$((n - 1))]"
echo "  nodes:"
echo "    n0: {component: Source, config: {value: v0}}"
i=1
while [ "$i" -lt "$n" ]; do
	case $((i % 3)) in
	0) echo "    n$i: {component: Source, config: {value: v$i}}" ;;
	1) echo "    n$i: {component: Echo, needs: {in: n$((i - 1))}, config: {suffix: s$i}}" ;;
	2) echo "    n$i: {component: Join, needs: {a: n$((i - 1)), b: n$(( (i - 2) ))}}" ;;
	esac
	i=$((i + 1))
done
