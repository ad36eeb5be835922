# The runtime image: scorer on Debian slim as a non-root user, ONNX Runtime's library for the
# `onnx` model kind, no secrets (DATABASE_URL and cloud credentials come from the environment at
# run time, e.g. a Kubernetes Secret).
#   docker build -t scorer .
#   docker run --rm --read-only --user 10001 -e DATABASE_URL=postgres://... \
#     -v $PWD/jobs:/app/jobs:ro -v $PWD/models:/app/models:ro scorer run churn_daily --date 2026-11-24
# The three base images are build arguments, so a machine without a registry builds this same
# file from bases it made itself (scripts/image-bases.sh, as CI does in scripts/image-check.sh).
ARG RUST_IMAGE=rust:1.95-bookworm
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG DEBIAN_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY sql ./sql
COPY benches ./benches
# scorer models verify embeds the parity test's sentences (include_str!)
COPY tests/fixtures/text_embedding ./tests/fixtures/text_embedding
# Cargo's registry and target directory are cache mounts: a rebuild after a source edit recompiles
# scorer's own crates, not its ~600 dependencies. No debug info (the binaries are for running).
ENV CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols
RUN --mount=type=cache,id=scorer-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=scorer-release-target,target=/src/target \
    cargo build --release --locked --bins \
    && mkdir -p /out \
    && cp target/release/scorer target/release/scorer-datagen /out/

# ONNX Runtime's C library for the onnx model kind, from the onnxruntime wheel on PyPI (as
# scripts/onnxruntime.sh does); scorer loads it at run time through ORT_DYLIB_PATH.
FROM ${PYTHON_IMAGE} AS onnxruntime
ARG ONNXRUNTIME_VERSION=1.31.1
RUN python3 -m pip download --no-cache-dir --no-deps --only-binary=:all: "onnxruntime==${ONNXRUNTIME_VERSION}" -d /wheel \
    && python3 -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('/wheel/*.whl')[0]); \
[open('/libonnxruntime.so', 'wb').write(z.read(n)) for n in z.namelist() \
 if n.startswith('onnxruntime/capi/libonnxruntime.so')]"

FROM ${DEBIAN_IMAGE}
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 scorer
COPY --from=build /out/scorer /out/scorer-datagen /usr/local/bin/
COPY --from=onnxruntime /libonnxruntime.so /usr/local/lib/libonnxruntime.so
ENV ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so
WORKDIR /app
COPY jobs ./jobs
COPY models ./models
USER 10001
ENTRYPOINT ["scorer"]
CMD ["--help"]
