# Statehub's container image: one static binary on an empty base, run as a non-root user, with its
# data in the /data volume.
#
#   docker build -t statehub --build-arg VERSION=$(git describe --tags --always) \
#       --build-arg COMMIT=$(git rev-parse HEAD) .
#   docker run -p 8000:8000 -v statehub-data:/data statehub
#
# Flags go after the image name or as STATEHUB_* variables (docker run -e STATEHUB_JWT_SECRET=...).
# The base has no shell and no curl: the HEALTHCHECK runs the binary itself (statehub -healthcheck).
# Serving TLS inside the container (-tls-cert, -tls-domain), give the health check an https:// URL:
#   docker run --health-cmd '["/statehub","-healthcheck","https://127.0.0.1:8000/.health"]' ...
# A bind mount in place of the volume must be writable by uid 65532.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=
RUN CGO_ENABLED=0 go build -trimpath -buildvcs=false \
      -ldflags "-s -w -X github.com/statehub/statehub/internal/buildinfo.version=${VERSION} -X github.com/statehub/statehub/internal/buildinfo.commit=${COMMIT}" \
      -o /out/statehub . \
 && mkdir -p /out/data

FROM scratch
# CA certificates for -jwt-jwks-url and -tls-domain (ACME), which speak HTTPS to other servers.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/statehub /statehub
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
ENV STATEHUB_ADDR=:8000 \
    STATEHUB_DATA=/data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["/statehub", "-healthcheck", "http://127.0.0.1:8000/.health"]
ENTRYPOINT ["/statehub"]
