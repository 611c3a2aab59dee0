# ClinicFlow API and worker image. Not exercised by CI (no Docker engine there); see README.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 clinicflow
# The pinned, hashed versions first (a layer that survives code changes), then the package.
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --require-hashes -r requirements/runtime.lock
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-deps . \
    && mkdir -p /app/var \
    && chown clinicflow:clinicflow /app/var
USER clinicflow
# var/ holds the dev mail outbox and other local files: a volume in compose.yaml.
VOLUME ["/app/var"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["clinicflow", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]
