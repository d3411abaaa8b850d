# calico-p4 images: one image carries every binary; the DaemonSets pick the command.
#   docker build -t calico-p4:dev .
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/...

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends iproute2 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/ /usr/local/bin/
# The driver is copied onto the host (or into calico-node) by an init container; see manifests/calico.
ENTRYPOINT ["/usr/local/bin/calico-p4-manager"]
