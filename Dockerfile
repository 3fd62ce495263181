# syntax=docker/dockerfile:1
# rail: the order-routing engine, as a small non-root image.
#
#   docker build -t rail:<tag> .
#   docker run --rm -p 3000:3000 rail:<tag>
#
# The cache mounts below need BuildKit (the default builder of current Docker).

# ---- build
FROM rust:1.95-bookworm AS builder
WORKDIR /build
# Everything the release build reads: the workspace manifests and lock file, both crates,
# and the files embedded at compile time (migrations/, config/, static/).
COPY Cargo.toml Cargo.lock ./
COPY actors/ actors/
COPY src/ src/
COPY migrations/ migrations/
COPY config/ config/
COPY static/ static/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --profile optimized --locked \
    && cp target/optimized/rail /build/rail

# ---- run
FROM debian:bookworm-slim
# ca-certificates is left unpinned on purpose: it should follow Debian's security updates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 rail \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /app \
       --shell /usr/sbin/nologin rail
WORKDIR /app
COPY --from=builder /build/rail /usr/local/bin/rail
# config/<RAIL_ENV>.toml is read from ./config at run time (config/default.toml is also
# built into the binary).
COPY config/ /app/config/
# The embedded journal lives in /tmp: in Kubernetes an emptyDir, since the root filesystem
# is read-only. Mount a volume there (or set RAIL_JOURNAL_PATH) to keep it across containers.
ENV RAIL_ENV=production \
    RAIL_JOURNAL_PATH=/tmp/rail.db
# The API and websocket; /metrics on 9300 when RAIL_METRICS_PORT says so (k8s/configmap.yaml).
EXPOSE 3000 9300
USER 10001
ENTRYPOINT ["/usr/local/bin/rail"]
