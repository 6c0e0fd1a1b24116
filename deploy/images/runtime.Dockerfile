# What every service image runs on (issue 20): the locally built Debian
# base, CA certificates and curl (the gateway's health check), and the
# unprivileged user ssp (uid 10001).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/ssp --create-home ssp
WORKDIR /var/lib/ssp
USER ssp
ENV DATA_DIR=/var/lib/ssp RUST_LOG=info
