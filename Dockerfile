# The xdrs image: one Python environment for `xdrs engine`, `xdrs replay` and the other
# subcommands (docker-compose.yml picks the command). Kafka comes from the compose file, so
# the embedded-broker extra is not installed.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY placement ./placement
COPY collectors ./collectors
COPY xdrs ./xdrs
RUN pip install . && useradd --system --uid 10001 --home-dir /nonexistent xdrs

USER xdrs
WORKDIR /
ENTRYPOINT ["xdrs"]
CMD ["--help"]
