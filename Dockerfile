# The Tact worker image (used by docker-compose.yml).
FROM python:3.11-slim
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md setup.py tact_build.py ./
COPY engine ./engine
COPY connectors ./connectors
RUN pip install --no-cache-dir .
COPY rules ./rules
RUN useradd --system --uid 10001 tact && chown -R tact /app
USER tact
EXPOSE 6066
CMD ["tact", "run", "--rules", "/app/rules"]
