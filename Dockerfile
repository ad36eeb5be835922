# The runtime image: scorer on Debian slim as a non-root user, ONNX Runtime's library for the
# `onnx` model kind, no secrets (DATABASE_URL and cloud credentials come from the environment at
# run time, e.g. a Kubernetes Secret). The dependency layer (cargo-chef) is rebuilt only when
# Cargo.toml or Cargo.lock change, not on every source edit.
#   docker build -t scorer .
#   docker run --rm -e DATABASE_URL=postgres://... -v $PWD/jobs:/app/jobs -v $PWD/models:/app/models \
#     scorer run churn_daily --date 2026-11-24
# CI lints this file with hadolint (scripts/test.sh); no Docker engine runs there, so the image is
# not built in CI (README, "Running in production").
ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.76
WORKDIR /src

FROM chef AS plan
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS build
COPY --from=plan /src/recipe.json recipe.json
RUN cargo chef cook --release --locked --bins --recipe-path recipe.json
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY sql ./sql
COPY benches ./benches
# scorer models verify embeds the parity test's sentences (include_str!)
COPY tests/fixtures/text_embedding ./tests/fixtures/text_embedding
RUN cargo build --release --locked --bins

# ONNX Runtime's C library for the onnx model kind, from the onnxruntime wheel on PyPI (as
# scripts/onnxruntime.sh does); scorer loads it at run time through ORT_DYLIB_PATH.
FROM python:3.11-slim-bookworm AS onnxruntime
ARG ONNXRUNTIME_VERSION=1.31.1
RUN pip download --no-cache-dir --no-deps --only-binary=:all: "onnxruntime==${ONNXRUNTIME_VERSION}" -d /wheel \
    && python -c "import glob, zipfile; z = zipfile.ZipFile(glob.glob('/wheel/*.whl')[0]); \
[open('/libonnxruntime.so', 'wb').write(z.read(n)) for n in z.namelist() \
 if n.startswith('onnxruntime/capi/libonnxruntime.so')]"

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 scorer
COPY --from=build /src/target/release/scorer /src/target/release/scorer-datagen /usr/local/bin/
COPY --from=onnxruntime /libonnxruntime.so /usr/local/lib/libonnxruntime.so
ENV ORT_DYLIB_PATH=/usr/local/lib/libonnxruntime.so
WORKDIR /app
COPY jobs ./jobs
COPY models ./models
USER 10001
ENTRYPOINT ["scorer"]
CMD ["--help"]
