#!/usr/bin/env bash
# The CI cookbook of README.md ("CI cookbook") as one runnable job, with curl and POSIX tools only
# (no jq). KEEP IN SYNC: README.md shows these same commands; when you change a recipe here, change
# it there too, and the other way round. e2e/cookbook_test.go runs this file against the real
# binary (go test ./e2e/ -run Cookbook), so the README's recipes are tested through it.
#
# Usage: bash e2e/cookbook.sh [build|coverage|views|deploy|deploy-cli]...
#   With no argument it runs the first four, in that order. Each recipe runs in its own subshell,
#   as a CI step would, so the deploy lock's EXIT trap fires when the deploy step ends. deploy-cli
#   is the deploy lock with the statehub CLI, which must be on the PATH.
#
# Environment:
#   STATEHUB      the server, e.g. https://statehub.example (required)
#   TOKEN         a bearer token that may write /ci/$REPO/ (the -admin-token or a JWT) (required)
#   REPO          the repository, one key component (default demo)
#   BRANCH        the branch being built (default main); characters a key cannot hold become _
#   OWNER         the deploy lock's owner label (default $REPO/$BRANCH@host)
#   DEPLOY        the deploy command, run by sh under the lock with the fence exported as
#                 LOCK_FENCE (deploy) or STATEHUB_FENCE (deploy-cli)
#   COVERAGE_SVG  the coverage badge to store (default coverage.svg)
#   LOCK_TRIES    how many times to wait up to 60 s for a held deploy lock (default 30)
set -euo pipefail

: "${STATEHUB:?set STATEHUB to the server URL, e.g. https://statehub.example}"
: "${TOKEN:?set TOKEN to a bearer token that may write /ci/}"
REPO=${REPO:-demo}
# A key component holds letters, digits, - and _ only: feature/login-1.2 becomes feature_login-1_2.
BRANCH=$(printf '%s' "${BRANCH:-main}" | tr -c 'A-Za-z0-9_-' '_')
OWNER=${OWNER:-$REPO/$BRANCH@$HOSTNAME}
DEPLOY=${DEPLOY:-'echo "deploying with fence ${LOCK_FENCE:-$STATEHUB_FENCE}"'}
COVERAGE_SVG=${COVERAGE_SVG:-coverage.svg}
LOCK_TRIES=${LOCK_TRIES:-30}

# 1. Build numbers per branch: 1, 2, 3, ... for each branch, atomically, however many jobs run.
recipe_build() {
  BUILD=$(curl -fsS -X POST "$STATEHUB/ci/$REPO/builds/$BRANCH?incr" -H "Authorization: Bearer $TOKEN")
  echo "build=$BUILD"
}

# 2. A deploy lock: wait for it, deploy, and release it however the deploy ends.
recipe_deploy() {
  LOCK_URL="$STATEHUB/ci/$REPO/deploy"
  answer=$(mktemp)
  for _ in $(seq "$LOCK_TRIES"); do
    # -G puts the --data-urlencode fields in the query string; -X POST keeps the method POST.
    status=$(curl -sS -o "$answer" -w '%{http_code}' -X POST -G "$LOCK_URL?lock&ttl=30m&wait=60s" \
      --data-urlencode "owner=$OWNER" -H "Authorization: Bearer $TOKEN")
    [ "$status" = 409 ] || break # 409: still held by someone else after the wait; try again
    echo "waiting for the deploy lock: $(cat "$answer")" >&2
  done
  if [ "$status" != 200 ]; then
    echo "could not take the deploy lock (HTTP $status): $(cat "$answer")" >&2
    rm -f "$answer"
    exit 1
  fi
  # The answer is {"key":..,"token":"..","fence":N,"expires":..,"owner":..}; the token is base32.
  LOCK_TOKEN=$(sed -n 's/.*"token":"\([^"]*\)".*/\1/p' "$answer")
  LOCK_FENCE=$(sed -n 's/.*"fence":\([0-9]*\).*/\1/p' "$answer")
  rm -f "$answer"
  release() {
    curl -fsS -X DELETE "$LOCK_URL?lock" -H "Authorization: Bearer $TOKEN" -H "X-Lock-Token: $LOCK_TOKEN" >/dev/null
  }
  trap release EXIT           # success, failure or set -e: the lock is released
  trap 'exit 143' TERM INT    # a cancelled job exits, which runs the EXIT trap
  export LOCK_FENCE           # pass it on: a deploy target can refuse a smaller fence than it has seen
  echo "lock fence=$LOCK_FENCE"
  sh -c "$DEPLOY"
}

# 2b. The same deploy lock with the statehub CLI: it waits, renews the lock while the deploy runs,
#     releases it however the deploy ends, passes SIGTERM on, and exits with the deploy's status.
recipe_deploy_cli() {
  export STATEHUB_URL=$STATEHUB STATEHUB_TOKEN=$TOKEN
  statehub lock "/ci/$REPO/deploy" -ttl 5m -wait 30m -owner "$OWNER" -- sh -c "$DEPLOY"
}

# 3. A coverage badge: store the SVG your coverage tool made; the server serves it back as is.
recipe_coverage() {
  curl -fsS -T "$COVERAGE_SVG" -H 'Content-Type: image/svg+xml' -H "Authorization: Bearer $TOKEN" \
    "$STATEHUB/ci/$REPO/coverage"
  echo
  echo "![coverage]($STATEHUB/ci/$REPO/coverage)"
}

# 4. A README view counter: every fetch of the badge counts one view. No token: an <img> has none,
#    so the server grants anonymous read and incr on /views/ (-anon, see the README).
recipe_views() {
  svg=$(curl -fsS "$STATEHUB/views/$REPO?badge&incr&label=views")
  echo "views=$(printf '%s' "$svg" | sed -n 's/.*aria-label="views: \([0-9]*\)".*/\1/p')"
  echo "![views]($STATEHUB/views/$REPO?badge&incr&label=views)"
}

[ $# -gt 0 ] || set -- build coverage views deploy
for recipe in "$@"; do
  case $recipe in
  build | coverage | views | deploy | deploy-cli) ("recipe_${recipe//-/_}") ;;
  *)
    echo "unknown recipe $recipe: use build, coverage, views, deploy or deploy-cli" >&2
    exit 2
    ;;
  esac
done
