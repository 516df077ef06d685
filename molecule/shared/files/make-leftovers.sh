#!/bin/sh
# Leave what a crash leaves: SIGKILL this host's dockerd in the middle of `docker load`, after at least one
# new layer was committed, then start it again. Tries up to 6 times (a load that wins the race is undone).
# Prints the number of new layerdb records and overlay2 dirs the crash left behind.
set -eu
export DOCKER_BUILDKIT=0
layerdb=/var/lib/docker/image/overlay2/layerdb/sha256
overlay=/var/lib/docker/overlay2

if ! [ -f /root/big.tar ]; then
    context=$(mktemp -d)
    cat > "$context/Dockerfile" <<'DOCKERFILE'
FROM strata/base:1.0
RUN dd if=/dev/urandom of=/one bs=1048576 count=48 2>/dev/null
RUN dd if=/dev/urandom of=/two bs=1048576 count=48 2>/dev/null
RUN dd if=/dev/urandom of=/three bs=1048576 count=48 2>/dev/null
RUN dd if=/dev/urandom of=/four bs=1048576 count=48 2>/dev/null
DOCKERFILE
    docker build -q -t strata/big:1.0 "$context" >/dev/null
    rm -rf "$context"
    docker save -o /root/big.tar strata/big:1.0
    docker rmi strata/big:1.0 >/dev/null
fi

entries() {  # the number of entries in a directory
    find "$1" -mindepth 1 -maxdepth 1 | wc -l
}

restart() {
    pid=$(cat /var/run/docker.pid)
    kill -9 "$pid"
    for _ in $(seq 1 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    # The daemon's own containerd outlives it; a crashed host's next dockerd would find it running.
    if [ -f /var/run/docker/containerd/containerd.pid ]; then
        kill -9 "$(cat /var/run/docker/containerd/containerd.pid)" 2>/dev/null || true
    fi
    # Let the next daemon start well after the leftovers' last change (the prune's in-flight gate).
    sleep 3
    service docker start >/dev/null
    for _ in $(seq 1 100); do docker info >/dev/null 2>&1 && return 0; sleep 0.2; done
    echo "dockerd did not come back" >&2
    exit 1
}

if ! [ -d /var/lib/docker/image/overlay2 ]; then
    # The containerd image store: a crash mid-load leaves only what its leases hold (not orphans until they
    # expire). Kill it once mid-ingest all the same, then leave what a crash between the snapshotter's mkdir
    # and its commit leaves, and a write that no record names: files no database knows.
    ctd=/var/lib/docker/containerd/daemon
    snapshots=$ctd/io.containerd.snapshotter.v1.overlayfs/snapshots
    ingest=$ctd/io.containerd.content.v1.content/ingest
    docker load -q -i /root/big.tar >/dev/null 2>&1 &
    loader=$!
    waited=0
    while [ -z "$(ls -A "$ingest" 2>/dev/null)" ] && [ "$waited" -lt 600 ]; do
        sleep 0.02
        waited=$((waited + 1))
    done
    restart
    wait "$loader" || true
    # A snapshot removal makes containerd's GC delete every snapshots/* entry the snapshotter has no record
    # of, and a restart sets one off too (the crashed load's snapshots). Set one off here and wait for it to
    # take a probe directory, then plant the leftovers; if a later GC took one as it was planted, plant again.
    probe="$snapshots/new-strata-probe"
    mkdir -p "$probe"
    docker rm "$(docker create strata/base:1.0 true)" >/dev/null
    for _ in $(seq 1 100); do [ -d "$probe" ] || break; sleep 0.2; done
    rm -rf "$probe"
    leftovers="$snapshots/new-2611291 $snapshots/999999 $ingest/$(printf strata | sha256sum | cut -c1-64)"
    for attempt in 1 2 3 4 5; do
        for dir in $leftovers; do
            if mkdir -p "$dir/fs" && head -c 1048576 /dev/urandom > "$dir/fs/data"; then
                touch -d '2 days ago' "$dir/fs/data" "$dir/fs" "$dir" 2>/dev/null || true  # checked below
            fi
        done
        sleep 3  # a GC under way when they were planted is over by now
        missing=0
        for dir in $leftovers; do [ -f "$dir/fs/data" ] || missing=$((missing + 1)); done
        if [ "$missing" -eq 0 ]; then
            echo "3 leftovers no database knows"
            exit 0
        fi
        echo "attempt $attempt: containerd's GC removed $missing leftovers as they were planted; again" >&2
    done
    echo "containerd's GC removed the leftovers in 5 attempts" >&2
    exit 1
fi

layers_before=$(entries "$layerdb")
dirs_before=$(entries "$overlay")
for attempt in 1 2 3 4 5 6; do
    before=$(entries "$layerdb")
    docker load -q -i /root/big.tar >/dev/null 2>&1 &
    loader=$!
    waited=0
    while [ "$(entries "$layerdb")" -le "$before" ] && [ "$waited" -lt 600 ]; do
        sleep 0.02
        waited=$((waited + 1))
    done
    restart
    wait "$loader" || true
    if docker image inspect strata/big:1.0 >/dev/null 2>&1; then
        echo "attempt $attempt: the load finished before the kill; again" >&2
        docker rmi strata/big:1.0 >/dev/null
        continue
    fi
    echo "$(( $(entries "$layerdb") - layers_before )) layer records, $(( $(entries "$overlay") - dirs_before )) directories left"
    exit 0
done
echo "could not kill dockerd mid-load in 6 attempts" >&2
exit 1
