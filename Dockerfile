# syntax=docker/dockerfile:1
#
# Two stages: a Rust builder that links the agent statically with scripts/build-static (the
# same command that builds it outside Docker), and an empty `scratch` image that holds
# nothing but that binary.
#
#   docker build -t <registry>/prometheus-agent:<tag> .

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io downloads and compiled dependencies between builds
# (BuildKit, the default builder of current Docker); the binary is copied out of the cached
# target directory because that directory is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    bin="$(scripts/build-static)" \
    && install -D -m 0555 "$bin" /out/prometheus-agent

FROM scratch
COPY --from=build /out/prometheus-agent /prometheus-agent
# 65532 is the conventional "nonroot" id. It is numeric so that Kubernetes' runAsNonRoot can
# verify it without an /etc/passwd in the image.
USER 65532:65532
EXPOSE 8000
ENTRYPOINT ["/prometheus-agent"]
