# Weft's container image: the control plane (`weft serve`) and the sidecar's capture init
# container (`weft capture apply`) run from this one image. The sidecar itself is upstream
# Envoy's image, unchanged (see README "Container image").
#
#   docker build -t weft:0.1.0 .
#
# The build stage compiles the TypeScript and lays out /opt/weft with scripts/stage-image.mjs
# (e2e/image-layout.e2e.test.ts runs the same script and checks its result); the runtime stage
# holds Node 24, iptables (for the capture init container) and /opt/weft, and runs as a
# non-root user. Node 24 is the version package.json pins.
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY tsconfig.json buf.yaml buf.gen.yaml ./
COPY generated ./generated
COPY src ./src
COPY e2e ./e2e
COPY bench ./bench
COPY envoy-bootstrap ./envoy-bootstrap
COPY manifests ./manifests
COPY scripts ./scripts
RUN npm run build && node scripts/stage-image.mjs /opt/weft

FROM ${NODE_IMAGE}
# iptables and iproute2: `weft capture apply` in the init container (run as root with
# NET_ADMIN and NET_RAW only); nothing else is added to the base image.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables=1.8.9-2 iproute2=6.1.0-3 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/weft /opt/weft
RUN ln -s /opt/weft/dist/src/cli/main.js /usr/local/bin/weft && chmod 0755 /opt/weft/dist/src/cli/main.js
# 1337 is the proxy uid the capture rules exempt; the control plane runs as 65532 (nonroot).
USER 65532:65532
WORKDIR /var/lib/weft
ENV NODE_ENV=production
EXPOSE 15010 15012 15014 15017
ENTRYPOINT ["node", "/opt/weft/dist/src/cli/main.js"]
CMD ["serve", "--help"]
