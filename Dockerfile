# One image for the web server, the Celery workers and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORTAL_VAR_DIR=/var/lib/portal
RUN apt-get update \
 && apt-get install -y --no-install-recommends graphviz \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 1000 portal \
 && mkdir -p /var/lib/portal && chown portal /var/lib/portal
WORKDIR /app
COPY pyproject.toml requirements.lock README.md ./
COPY portal portal
COPY deployments deployments
COPY topology topology
COPY workers workers
COPY templates templates
COPY static static
COPY examples examples
COPY manage.py ./
# The runtime dependencies at the versions the tests ran with (the lock, as constraints, so
# the dev extra stays out); the static files collected for WhiteNoise, hashed and compressed.
RUN pip install --no-cache-dir -c requirements.lock . && python manage.py collectstatic --noinput -v 0
USER portal
EXPOSE 8000
CMD ["gunicorn", "portal.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "60"]
