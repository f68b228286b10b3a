# syntax=docker/dockerfile:1

# Pillarbox Event Dispatcher container image.
#
#   docker build --build-arg VERSION=v1.2.3 --build-arg COMMIT="$(git rev-parse HEAD)" \
#       -t pillarbox-event-dispatcher .
#   docker run --rm -p 8080:8080 pillarbox-event-dispatcher -heartbeat 30s
#   docker run --rm -p 8080:8080 -e DISPATCHER_HEARTBEAT=30s pillarbox-event-dispatcher
#
# Arguments after the image name are passed to the binary as flags, and -e
# variables (DISPATCHER_*) reach it unchanged. Multi-platform builds
# (docker buildx build --platform linux/amd64,linux/arm64) cross-compile on the
# build platform, so no emulation runs the Go compiler.
#
# Base images are pinned by the digest of their multi-platform index, so that
# a rebuild of a commit starts from the same bytes; the tag stays beside it
# for people (a registry uses the digest and ignores the tag). There is no
# registry client on the machines this was written on, so the digests were
# not resolved here: they are the ones published for these tags and pinned
# by many public projects (golang:1.26.8, which golang:1.26 then named; the
# distroless tag as of late August 2026). To move to newer images, resolve
# the tags and replace both digests:
#   docker buildx imagetools inspect golang:1.26.8 --format '{{.Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/static-debian12:nonroot --format '{{.Manifest.Digest}}'

# golang:1.26.8: the Go release the project is developed with.
FROM --platform=$BUILDPLATFORM golang:1.26.8@sha256:3c3e25a4da13fd0478eed2df1eb35a0e667094a7124d3993a6a1d30f71c17e79 AS build
WORKDIR /src
# GOWORK=off: the image builds the service module alone; go.work (which adds
# the bench module for development) would pull the bench's dependencies in.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off

# Dependencies first, so that this layer is reused while go.mod/go.sum stay the same.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
# VERSION and COMMIT are embedded in the binary (-version, /health,
# dispatcher_build_info); make docker passes both. .git is not in the build
# context, so without COMMIT the binary reports "unknown".
ARG VERSION=dev
ARG COMMIT=
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build \
        -ldflags "-s -w -X github.com/SRGSSR/pillarbox-event-dispatcher/internal/app.Version=${VERSION} -X github.com/SRGSSR/pillarbox-event-dispatcher/internal/app.Commit=${COMMIT}" \
        -o /out/event_dispatcher ./cmd/event_dispatcher

# Static, non-root (uid 65532) runtime image with CA certificates and tzdata.
# gcr.io/distroless/static-debian12:nonroot
FROM gcr.io/distroless/static-debian12:nonroot@sha256:afa5c872c891853ca7fcf1f12c3edb23f7eeef36189728842dd51042ff57f7ab
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.title="pillarbox-event-dispatcher" \
      org.opencontainers.image.description="Receives JSON events over HTTP POST and broadcasts them as Server-Sent Events" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/event_dispatcher /usr/local/bin/event_dispatcher
USER nonroot:nonroot
EXPOSE 8080
# The image has no shell and no curl: the binary checks itself. Readiness,
# not liveness: with NATS configured and unreachable the instance is alive
# but cannot publish, and is reported unhealthy until NATS is back. Serving
# on another port than 8080 (-port, DISPATCHER_PORT)? Override the check in
# exec form, e.g. in compose.yaml: test: ["CMD", "/usr/local/bin/event_dispatcher",
# "-healthcheck", "http://127.0.0.1:9090/health/ready"] (docker run's
# --health-cmd runs through a shell, which this image does not have).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/event_dispatcher", "-healthcheck", "http://127.0.0.1:8080/health/ready"]
ENTRYPOINT ["/usr/local/bin/event_dispatcher"]
