# syntax=docker/dockerfile:1
# The notify server image: `docker build -t notify .` at the repository root.
# Build stage: the same command CI runs (scripts/build-server.sh).
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS build
WORKDIR /src
# librdkafka is built from source by rdkafka-sys (make, a C compiler and zlib: all in the
# rust image); nothing else is needed.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_TARGET_DIR=/src/target bash scripts/build-server.sh /out

# Runtime stage: Debian slim (glibc for the binary, CA certificates for TLS to Kafka, MongoDB,
# SMTP and OTLP), no compiler, no shell tools beyond the base image.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 notify \
    && useradd --system --uid 10001 --gid notify --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin notify
COPY --from=build /out/notify-server /usr/local/bin/notify-server
USER 10001:10001
# Listen on every interface in a container (demo mode still falls back to loopback), and log
# one JSON object per line for log shippers.
ENV NOTIFY_LISTEN=0.0.0.0:8080 \
    NOTIFY_LOG_FORMAT=json
EXPOSE 8080
# No curl in the image: bash's /dev/tcp asks /health/live (200 while the process serves).
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health/live HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# SIGTERM drains sessions with a reconnect hint and exits 0 within 10 s.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/notify-server"]
