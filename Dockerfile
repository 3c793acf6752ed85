# syntax=docker/dockerfile:1
# The operator image: `docker build -t remote-reindex:0.1.0 .`
# Runs `remote-reindex controller` as UID/GID 65532 on distroless (glibc + CA certificates, no shell).
# The binary uses rustls (ring) for TLS: no OpenSSL needed at build or run time.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# The registry and target caches stay on the builder (BuildKit); the binary is copied out of them.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
    && install -D -m 0755 target/release/remote-reindex /out/remote-reindex

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="remote-reindex" \
      org.opencontainers.image.description="Kubernetes operator copying Elasticsearch/OpenSearch indices from remote clusters"
COPY --from=build /out/remote-reindex /usr/local/bin/remote-reindex
USER 65532:65532
# /healthz, /readyz and /metrics (--metrics-addr)
EXPOSE 8080
ENTRYPOINT ["remote-reindex", "controller"]
