# First draft of the runtime image (the deploy issue will slim it and check it in CI; this
# machine has no Docker engine, so it is not built here yet).
#   docker build -t scorer .
#   docker run --rm -e DATABASE_URL=postgres://... -v $PWD/jobs:/app/jobs -v $PWD/models:/app/models \
#     scorer run churn_daily --date 2026-11-24
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY sql ./sql
COPY benches ./benches
RUN cargo build --release --locked --bins

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* && useradd --system --uid 10001 scorer
COPY --from=build /src/target/release/scorer /src/target/release/scorer-datagen /usr/local/bin/
WORKDIR /app
COPY jobs ./jobs
COPY models ./models
USER scorer
ENTRYPOINT ["scorer"]
CMD ["--help"]
