# refit as a container, in place of containrrr/watchtower:
#
#   make image          # refit:VERSION and refit:latest (builds the Debian bases when missing)
#   docker run -d -v /var/run/docker.sock:/var/run/docker.sock refit --interval 30 --cleanup
#
# With no arguments it runs as Watchtower does with none (`refit watchtower`);
# Watchtower's flags, WATCHTOWER_* variables and labels mean what they mean
# there; `refit COMMAND ...` (daemon, check, update, ...) runs that command.
# Runs as root by default (the socket's owner); `--user refit --group-add
# GID-OF-THE-SOCKET` runs it as the image's refit user (docs/packaging.md).

ARG BASE=debian:bookworm
ARG RUNTIME_BASE=debian:bookworm-slim

FROM ${BASE} AS build
# A Debian mirror other than deb.debian.org (the base images' own), when given.
ARG DEBIAN_MIRROR=
COPY scripts/image-apt-install /usr/local/sbin/
RUN sh /usr/local/sbin/image-apt-install build-essential pkg-config xxd libcurl4-openssl-dev \
        libjansson-dev libyaml-dev libmicrohttpd-dev libssl-dev libsystemd-dev
WORKDIR /src
COPY . .
# no git checkout in here: the version comes from `make image`
ARG REFIT_VERSION=unknown
RUN make -j"$(nproc)" VERSION="$REFIT_VERSION" WERROR=1 all && strip refit && ./refit version --docker-host unix:///nonexistent | head -1

FROM ${RUNTIME_BASE}
ARG DEBIAN_MIRROR=
# the libraries refit links (Debian 12's names) and the CA certificates; nothing else
COPY scripts/image-apt-install /tmp/
RUN set -eu; \
    sh /tmp/image-apt-install ca-certificates libcurl4 libjansson4 libyaml-0-2 libmicrohttpd12 \
        libssl3 libsystemd0; \
    rm /tmp/image-apt-install; \
    useradd --system --uid 999 --user-group --home-dir /var/lib/refit --shell /usr/sbin/nologin refit; \
    install -d -o refit -g refit -m 0770 /var/lib/refit
COPY --from=build /src/refit /usr/bin/refit
ARG REFIT_VERSION=unknown
LABEL org.opencontainers.image.title="refit" \
      org.opencontainers.image.description="keeps Docker containers on the newest image of their reference; replaces containrrr/watchtower" \
      org.opencontainers.image.version="${REFIT_VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENTRYPOINT ["/usr/bin/refit"]
CMD ["watchtower"]
