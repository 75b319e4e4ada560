# syntax=docker/dockerfile:1
# One image for every tier: `docker run IMAGE <feature|recall|ranking|gateway>` runs `wren serve <tier>`.
# The artifact bundle is not in the image; mount it at /artifacts (see docs/deploy.md).
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# Builder: compilers live here only. hnswlib ships no binary wheels, so every wheel the serving
# extras need is built (or downloaded) once into /wheels.
FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wren ./wren
COPY services ./services
COPY pipeline ./pipeline
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[serve]"

# Runtime: the serving extras only (no torch, no training extras, no toolchain), as a fixed non-root UID.
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WREN_ARTIFACTS=/artifacts
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels "wren[serve]" \
    && groupadd --gid 10001 wren \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin wren
# gRPC, gateway HTTP, /metrics
EXPOSE 50051 8080 9090
USER 10001:10001
ENTRYPOINT ["wren", "serve"]
CMD ["gateway"]
