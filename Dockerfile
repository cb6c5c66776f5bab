# One image for every process of the stack (compose.yaml and `strangler up --engine docker` pick
# the command).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STRANGLER_VAR_DIR=/var/lib/strangler

WORKDIR /app
# The pinned dependencies first, in a layer of their own, so a code change rebuilds only what
# follows. No package is copied yet: this installs the dependencies alone (an empty README
# stands in for the long description, so a README edit does not reinstall them). The `compare`
# extra is pytest, which `strangler compare` and the playbook's contract gate run.
COPY setup.cfg pyproject.toml ./
RUN touch README.md && pip install '.[compare]' && pip uninstall --yes strangler

COPY . .
# Editable, like `make venv`: manage.py and the packages stay where the commands expect them.
RUN pip install --no-deps -e . \
    && useradd --create-home --uid 1000 strangler \
    && mkdir -p /var/lib/strangler \
    && chown strangler /var/lib/strangler

USER strangler
EXPOSE 8000 8001 8101
CMD ["strangler", "up"]
