# syntax=docker/dockerfile:1
# One image for every ocpi-hub process; the command picks it:
#   docker build -t ocpi-hub .
#   docker run ocpi-hub api [--workers 2] | processors | projections | push | gateway
# Dependencies come from requirements.lock only (exact versions, sha256
# checked), the same lock `make venv` installs with the dev tools on top.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
# The lock before the code: a code change reuses the dependency layer.
COPY requirements.lock /src/requirements.lock
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --require-hashes -r /src/requirements.lock
COPY pyproject.toml /src/
COPY schemas /src/schemas
COPY producers /src/producers
COPY processors /src/processors
COPY projections /src/projections
COPY api /src/api
COPY gateway /src/gateway
COPY ocpi_hub /src/ocpi_hub
# setuptools is in the lock, so no unhashed build environment is fetched.
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps --no-build-isolation /src

FROM ${PYTHON_IMAGE}
# tini as PID 1: forwards SIGTERM to the process and reaps the API's workers.
# fonts-dejavu-core: the fonts invoice PDFs embed (docs/adr/0037).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ocpi \
    && useradd --system --uid 10001 --gid ocpi --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin ocpi
COPY --from=build /opt/venv /opt/venv
COPY deploy/healthcheck.py /opt/ocpi-hub/healthcheck.py
# The working directory holds only data/ (Faust's state, the key file made
# on first use); compose mounts one volume there for every process.
WORKDIR /app
RUN mkdir /app/data && chown ocpi:ocpi /app/data
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OCPI_HUB_API_HOST=0.0.0.0 \
    OCPI_HUB_GATEWAY_HOST=0.0.0.0 \
    OCPI_HUB_LOG_FORMAT=json
USER 10001:10001
EXPOSE 8000 8180
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "/opt/ocpi-hub/healthcheck.py"]
ENTRYPOINT ["tini", "--", "ocpi-hub"]
CMD ["api"]
