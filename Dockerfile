# syntax=docker/dockerfile:1
#
# turnout container image: a small Node 24 runtime with the bundled sidecar,
# nothing else.
#
# What ends up in the final image (on top of node:24-slim):
#   /app/dist   the esbuild bundle (npm run build: scripts/bundle.ts): cli.js,
#               worker.js (the translation worker), shared chunks, and
#               package.json ("type": "module"). Every production dependency
#               is bundled, so there is no node_modules; a broker's client
#               library, yargs and undici sit in their own files, read only by
#               a process that uses them (dist/modules.json lists what each
#               file holds).
# No TypeScript, no tests, no sources, no npm cache.
#
# scripts/build-bundle.sh replays this file without Docker (it reads it: the
# COPY/RUN/WORKDIR/ENV lines below are what it executes), and
# test/deploy/bundle.test.ts runs the result. Keep to the instructions that
# script understands: FROM, ARG, WORKDIR, ENV, COPY (no globs, no --link),
# RUN (shell form, --mount flags are ignored), and metadata.

ARG NODE_IMAGE=node:24-slim

# ---- build: full dependencies, bundle the TypeScript into dist/ ------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/bundle.ts ./scripts/bundle.ts
COPY adapters ./adapters
COPY config ./config
COPY lib ./lib
COPY src ./src
RUN npm run build

# ---- runtime ---------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
# glibc malloc: 2 arenas instead of 8 per core, and a fixed trim threshold
# (the default one grows with the allocation sizes it has seen), so what V8's
# compiler and GC threads free goes back to the kernel instead of staying
# resident in per-thread arenas. Peak RSS of turnout in bench/core.bench.ts:
# median 137 -> 124 MiB on its own, no throughput change. Keep in sync with
# CONTAINER_ENV in bench/core.bench.ts (test/deploy/bundle.test.ts checks it).
ENV MALLOC_ARENA_MAX=2 MALLOC_TRIM_THRESHOLD_=131072
WORKDIR /app
COPY --from=build /app/dist ./dist

# The node image's "node" user, by number: Kubernetes' runAsNonRoot can only
# verify a numeric user (a name fails with "image has non-numeric user").
USER 1000:1000

EXPOSE 8787

# turnout drains on SIGTERM itself (readyz 503, no new messages, in-flight
# ones finish within TURNOUT_DRAIN_TIMEOUT, the rest go back to the broker).
# node runs as PID 1 (exec form below, no shell in between), so the signal
# reaches it directly; PID 1 only gets the signals it installs handlers for,
# and turnout installs SIGTERM and SIGINT. turnout's only child processes are
# its translation workers, which it reaps itself (and which exit when turnout
# does), so there are no zombies to reap and no init (tini, docker run --init)
# is needed; adding one does no harm.
STOPSIGNAL SIGTERM

# Docker/Podman health only (Kubernetes ignores HEALTHCHECK and uses the
# probes in k8s/). The slim image has no curl: use Node's fetch.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.TURNOUT_PORT||8787)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# Node flags (bench/RESULTS.md has the measurements):
# --max-semi-space-size=4: 4 MiB semi-spaces instead of the 1 MiB V8 picks
#   under a 256 Mi limit: fewer scavenges per message, each copying the same
#   in-flight deliveries. In bench/core.bench.ts (3 alternating runs against
#   2 MiB) it costs 3-4 MiB more peak RSS (pass 92-94 vs 89-90 MiB) and saves
#   CPU: per delivery 45-48 vs 48-52 us, per translated message 67-79 vs
#   81-83 us. 1 MiB cost ~10 % more CPU per delivery than 2 MiB earlier.
# --liftoff-only: undici parses HTTP with llhttp compiled to WebAssembly, and
#   V8's optimising tier-up of llhttp's one very large function allocates a
#   ~20 MiB compiler zone in the first second under load: a transient that
#   set the process's peak RSS. V8's baseline WebAssembly code parses the
#   app's short responses without a measurable throughput change.
# --no-maglev: V8's mid-tier JavaScript compiler (Maglev) cost ~11-16 MiB of
#   peak RSS under full load (its compiler zones and code), and turning it
#   off cost no CPU: 3 alternating runs each, peak RSS pass 87.8-89.4 vs
#   101.5-102.2 MiB, translate 88.4-90.2 vs 98.7-104.5, the CLI process
#   87.6-88.5 vs 93.5-104.3; CPU per message pass 25-26 vs 28-29 us,
#   translate 46 vs 50-51 us. The interpreter, Sparkplug and TurboFan remain.
# Keep in sync with IMAGE_NODE_ARGS in bench/lib/runtime.ts
# (test/deploy/bundle.test.ts checks it). Overriding the container's
# `command` drops these flags; override `args` instead.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--liftoff-only", "--no-maglev", "dist/cli.js"]
CMD ["run"]
