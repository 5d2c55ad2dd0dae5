#!/usr/bin/env bash
# Packages the umbrella chart (its subcharts inside) as a release artefact
# and, given an oci:// reference, pushes it there (`make chart`).
#   HELM=helm hack/images/chart.sh VERSION OUT_DIR [oci://REGISTRY/PATH [helm push flags...]]
# The packaged charts' appVersion, the default image tag of every tool, is
# VERSION: the chart installs the images `make images` built with the same
# VERSION. The charts' version is VERSION as SemVer without a leading "v", or
# 0.0.0-g<VERSION> when VERSION is no SemVer (an untagged commit).
set -euo pipefail
if [ $# -lt 2 ]; then echo "usage: $0 VERSION OUT_DIR [oci://REGISTRY/PATH [helm push flags...]]" >&2; exit 2; fi
version=$1 out=$2 registry=${3:-}
shift $(( $# < 3 ? $# : 3 ))
helm=${HELM:?HELM must name the helm binary}
root=$(cd "$(dirname "$0")/../.." && pwd)
if ! [[ $version =~ ^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$ ]]; then
  echo "$0: VERSION $version is not a valid image tag" >&2; exit 2
fi
semver='^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?$'
chart_version=${version#v}
if ! [[ $chart_version =~ $semver ]]; then chart_version="0.0.0-g$version"; fi
if [ -n "$registry" ] && [[ $registry != oci://* ]]; then
  echo "$0: the chart registry must be an oci:// reference, not $registry" >&2; exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$root/charts/kubehpc" "$work/kubehpc"
rm -f "$work"/kubehpc/Chart.lock "$work"/kubehpc/charts/*.tgz
for f in "$work"/kubehpc/Chart.yaml "$work"/kubehpc/charts/*/Chart.yaml; do
  sed -i -E "s/^version: .*/version: $chart_version/; s/^appVersion: .*/appVersion: \"$version\"/" "$f"
done
# The umbrella's dependencies are its subcharts, and the tool charts' the
# library chart kubehpc-lib, now all at chart_version.
sed -i -E "s/^(    version: ).*/\1$chart_version/" "$work"/kubehpc/Chart.yaml "$work"/kubehpc/charts/*/Chart.yaml

mkdir -p "$out"
"$helm" package "$work/kubehpc" --destination "$out" >/dev/null
pkg="$out/kubehpc-$chart_version.tgz"
echo "Packaged $pkg (chart $chart_version, appVersion $version)"
if [ -n "$registry" ]; then
  "$helm" push "$pkg" "$registry" "$@"
fi
