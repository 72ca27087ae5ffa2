#!/bin/sh
# Secrets as files: for every PRS_<NAME>_FILE (and PGPASSWORD_FILE) set, export PRS_<NAME> (PGPASSWORD) with the
# file's content, so that Compose/Swarm secrets (/run/secrets/...) never appear in the image or the compose file.
set -eu
for name in $(env | sed -n 's/^\(PRS_[A-Z0-9_]*\)_FILE=.*/\1/p; s/^\(PGPASSWORD\)_FILE=.*/\1/p'); do
  file="$(printenv "${name}_FILE")"
  if [ ! -r "$file" ]; then
    echo "prs-entrypoint: ${name}_FILE names $file, which cannot be read" >&2
    exit 2
  fi
  value="$(cat "$file")"
  export "$name=$value"
  unset "${name}_FILE"
done
exec "$@"
