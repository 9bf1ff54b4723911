# Multi-stage build: a static walletd and walletctl on a minimal base, run as
# a non-root user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/ ./cmd/walletd ./cmd/walletctl

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/walletd /out/walletctl /usr/local/bin/
USER nonroot:nonroot
ENV WALLET_HTTP_ADDR=0.0.0.0:8080 WALLET_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/walletd"]
