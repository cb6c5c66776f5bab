# One image for every process of the stack (compose.yaml picks the command).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    STRANGLER_VAR_DIR=/var/lib/strangler

WORKDIR /app
COPY . .
# Editable, like `make venv`: manage.py and the packages stay where the commands expect them.
RUN pip install -e . \
    && useradd --create-home --uid 1000 strangler \
    && mkdir -p /var/lib/strangler \
    && chown strangler /var/lib/strangler

USER strangler
EXPOSE 8000 8001
CMD ["strangler", "up"]
