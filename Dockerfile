# syntax=docker/dockerfile:1

# Pillarbox Event Dispatcher container image.
#
#   docker build --build-arg VERSION=v1.2.3 -t pillarbox-event-dispatcher .
#   docker run --rm -p 8080:8080 pillarbox-event-dispatcher -heartbeat 30s
#   docker run --rm -p 8080:8080 -e DISPATCHER_HEARTBEAT=30s pillarbox-event-dispatcher
#
# Arguments after the image name are passed to the binary as flags, and -e
# variables (DISPATCHER_*) reach it unchanged. Multi-platform builds
# (docker buildx build --platform linux/amd64,linux/arm64) cross-compile on the
# build platform, so no emulation runs the Go compiler.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src
# GOWORK=off: the image builds the service module alone; go.work (which adds
# the bench module for development) would pull the bench's dependencies in.
ENV CGO_ENABLED=0 GOTOOLCHAIN=local GOWORK=off

# Dependencies first, so that this layer is reused while go.mod/go.sum stay the same.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=$TARGETOS GOARCH=$TARGETARCH go build \
        -ldflags "-s -w -X github.com/SRGSSR/pillarbox-event-dispatcher/internal/app.Version=${VERSION}" \
        -o /out/event_dispatcher ./cmd/event_dispatcher

# Static, non-root (uid 65532) runtime image with CA certificates and tzdata.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="pillarbox-event-dispatcher" \
      org.opencontainers.image.description="Receives JSON events over HTTP POST and broadcasts them as Server-Sent Events" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /out/event_dispatcher /usr/local/bin/event_dispatcher
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/event_dispatcher"]
