# The DES manager image: the single manager binary (controller, packer, reader sidecar, name service,
# marker) at /manager on a distroless, non-root base. The des CLI is for people and is not in the image.
# This is the contract `make image` (hack/image.sh) also builds without a Docker engine, and
# test/image checks that the two agree: /manager, the base's CA certificates, user 65532:65532,
# entrypoint ["/manager"].
# Build: docker build -t des.datavision.io/manager:dev .   (or a tag in your registry)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/manager ./cmd/manager

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
