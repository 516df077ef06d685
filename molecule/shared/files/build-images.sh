#!/bin/sh
# Build the test store inside a fleet host: strata/base (busybox import), strata/app:1.0 and 2.0 (classic
# builder, 2.0 on top of 1.0), strata/tool:1.0 (a sibling on the same base), a running container of app:2.0
# and an exited one of tool:1.0. Prints "built" when it made anything.
set -eu
export DOCKER_BUILDKIT=0
if docker image inspect strata/tool:1.0 >/dev/null 2>&1; then exit 0; fi

root=$(mktemp -d)
mkdir -p "$root/bin" "$root/etc" "$root/tmp"
cp /usr/local/lib/strata-busybox "$root/bin/busybox"
for applet in sh ls cat echo mkdir rm sleep true dd head touch printf cp mv ln sync chmod env id seq; do
    ln -s busybox "$root/bin/$applet"
done
echo "root:x:0:0:root:/:/bin/sh" > "$root/etc/passwd"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' - strata/base:1.0 >/dev/null
rm -rf "$root"

build() {  # build TAG, with the Dockerfile on stdin
    context=$(mktemp -d)
    cat > "$context/Dockerfile"
    docker build -q -t "$1" "$context" >/dev/null
    rm -rf "$context"
}
build strata/app:1.0 <<'DOCKERFILE'
FROM strata/base:1.0
RUN mkdir /app && echo "version 1" > /app/version && echo "#!/bin/sh" > /app/run && chmod 755 /app/run
RUN dd if=/dev/urandom of=/app/blob bs=1024 count=3072 2>/dev/null
DOCKERFILE
build strata/app:2.0 <<'DOCKERFILE'
FROM strata/app:1.0
RUN echo "version 2" > /app/version
DOCKERFILE
build strata/tool:1.0 <<'DOCKERFILE'
FROM strata/base:1.0
RUN mkdir /tool && dd if=/dev/urandom of=/tool/data bs=1024 count=1024 2>/dev/null
DOCKERFILE
docker run -d --name web --network none strata/app:2.0 sleep 100000 >/dev/null
docker run --name job --network none strata/tool:1.0 sh -c 'echo done > /tmp/result' >/dev/null
echo built
