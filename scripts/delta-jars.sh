#!/usr/bin/env bash
# The delta-spark jars (io.delta:delta-spark_2.13 and io.delta:delta-storage) at the version of
# the pinned `delta-spark` Python package, fetched by their Maven coordinates with the machine's
# own Maven client (its settings, mirrors and ~/.m2 cache) and copied into a folder that later
# runs reuse. Prints the jars as one comma-separated line (for `--jars` / `spark.jars`).
#   scripts/delta-jars.sh [DIR]     DIR defaults to ${FEATURESTORE_JARS_DIR:-~/.cache/featurestore/jars}/delta-<version>
# Progress goes to stderr. The tests, the benchmarks and docker/spark.Dockerfile all use this.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
version=${DELTA_VERSION:-$(sed -n 's/^ *delta-spark==\([0-9.]*\).*/\1/p' "$here/setup.cfg" | head -n 1)}
[ -n "$version" ] || { echo "delta-jars: no delta-spark==VERSION pin in setup.cfg" >&2; exit 2; }
scala=${SCALA_BINARY:-2.13}
dir=${1:-${FEATURESTORE_JARS_DIR:-$HOME/.cache/featurestore/jars}/delta-$version}
artifacts=("io.delta:delta-spark_$scala:$version" "io.delta:delta-storage:$version")
jars=()
for coordinates in "${artifacts[@]}"; do
  IFS=: read -r group artifact ver <<<"$coordinates"
  jar="$dir/$artifact-$ver.jar"
  if [ ! -s "$jar" ]; then
    command -v mvn >/dev/null || { echo "delta-jars: mvn not found: install Maven (Debian: maven)" >&2; exit 1; }
    echo "delta-jars: fetching $coordinates with Maven" >&2
    mkdir -p "$dir"
    if ! mvn -q -B -Dstyle.color=never dependency:copy -Dartifact="$coordinates:jar" -DoutputDirectory="$dir" \
        -Dmdep.overWriteReleases=true >&2; then
      echo "delta-jars: Maven could not fetch $coordinates (is it on Maven Central? see the delta-spark pin in setup.cfg)" >&2
      exit 1
    fi
  fi
  jars+=("$jar")
done
(IFS=,; echo "${jars[*]}")
