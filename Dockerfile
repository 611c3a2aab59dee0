# ClinicFlow API / worker image. Not exercised by CI (no Docker engine there); see README.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 clinicflow
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install .
USER clinicflow
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
CMD ["clinicflow", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
