# One image for every production process of LXP Reports:
#   API (default):        uvicorn api.app:app --host 0.0.0.0 --port 8000
#   Dagster code server:  dagster api grpc -m orchestration.definitions -h 0.0.0.0 -p 3030
#                         (what the official Helm chart's user-code deployment runs, deploy/helm/dagster-values.yaml)
#   Dagster run pods:     started by K8sRunLauncher from this same image (dagster api execute_run ...)
# Dependencies come from constraints.txt, the same pins `make test` uses; the `k8s` extra adds dagster-k8s.
# Checked by hadolint in tests/deploy/test_dockerfile.py.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml constraints.txt ./
COPY assets ./assets
COPY orchestration ./orchestration
COPY api ./api
RUN pip install --no-cache-dir -c constraints.txt ".[k8s]" \
    && python -m compileall -q /opt/venv/lib

FROM python:3.11-slim-bookworm
# A fixed numeric uid/gid so Kubernetes can enforce runAsNonRoot without a name lookup.
RUN groupadd --system --gid 10001 lxp \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin lxp \
    && mkdir -p /opt/dagster/dagster_home \
    && chown 10001:10001 /opt/dagster/dagster_home
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY workspace.yaml ./
# The root filesystem can stay read-only: bytecode is compiled at build time and local
# state (LXP_HOME) goes to /tmp, which the Kubernetes manifests mount as an emptyDir.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LXP_HOME=/tmp/lxp \
    LXP_LOG_FORMAT=json \
    DAGSTER_HOME=/opt/dagster/dagster_home
USER 10001:10001
EXPOSE 8000 3030
CMD ["uvicorn", "api.app:app", "--host", "0.0.0.0", "--port", "8000"]
