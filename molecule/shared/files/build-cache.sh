#!/bin/sh
# A build host's cache: `build` builds a Dockerfile of three RUN steps (one with a cache mount) with BuildKit
# and removes the image, as CI hosts do; the build cache stays. `rebuild` builds it again and prints
# "cached=<RUN steps served from the cache> seen=<what the cache mount holds>", then removes its images.
set -eu
export DOCKER_BUILDKIT=1
context=/root/strata-cache-build
mkdir -p "$context/app" "$context/seen"
cat > "$context/app/Dockerfile" <<'DOCKERFILE'
FROM strata/base:1.0
RUN echo one > /one.txt
RUN --mount=type=cache,target=/cache,id=strata-cache sh -c 'echo cached > /cache/c.txt; echo two > /two.txt'
RUN echo three > /three.txt
DOCKERFILE
cat > "$context/seen/Dockerfile" <<'DOCKERFILE'
FROM strata/base:1.0
RUN --mount=type=cache,target=/cache,id=strata-cache cp /cache/c.txt /seen.txt
DOCKERFILE

case "${1:-build}" in
build)
    docker build -q --network none -t strata/cached:1.0 "$context/app" >/dev/null
    docker rmi strata/cached:1.0 >/dev/null
    echo built
    ;;
rebuild)
    output=$(docker build --network none --progress plain -t strata/cached:1.0 "$context/app" 2>&1)
    # a step's line "#N [k/4] RUN ..." is followed by "#N CACHED" when the cache served it
    cached=$(printf '%s\n' "$output" | awk '/\] RUN /{run[$1]=1} $2=="CACHED" && run[$1]{n++} END{print n+0}')
    docker build -q --network none -t strata/seen:1.0 "$context/seen" >/dev/null
    seen=$(docker run --rm --network none strata/seen:1.0 cat /seen.txt)
    docker rmi strata/cached:1.0 strata/seen:1.0 >/dev/null
    echo "cached=$cached seen=$seen"
    ;;
*)
    echo "usage: $0 build|rebuild" >&2
    exit 2
    ;;
esac
