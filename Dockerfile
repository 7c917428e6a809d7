# One image for both Python services of hasura-edge:
#   python -m edge      the GraphQL edge      (EDGE_*,    port 8000)
#   python -m actions   actions/event service (ACTIONS_*, port 8001)
# docker-compose.yml picks the command per service. Dependencies come only from requirements.lock
# (every package pinned with ==; `make install` installs the same pins, through requirements-dev.lock);
# the project itself is installed with --no-deps on top.

# ---- build: a virtualenv with the pinned dependencies and the project --------------------------
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Dependencies first: this layer is reused until requirements.lock changes.
COPY requirements.lock ./
RUN pip install --require-virtualenv -r requirements.lock

# The request path is compiled with mypyc (setup.py, EDGE_MYPYC=1): a C compiler and the pinned
# build tools, both in this stage only. The tools go to /opt/buildtools (never copied to the
# runtime stage) and are found through PYTHONPATH while the project builds inside /opt/venv, so
# mypyc type-checks against the runtime dependencies it will run with.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY requirements-build.lock ./
RUN pip install --no-deps --target /opt/buildtools -r requirements-build.lock

COPY pyproject.toml setup.py README.md ./
COPY edge ./edge
COPY actions ./actions
RUN PYTHONPATH=/opt/buildtools EDGE_MYPYC=1 pip install --require-virtualenv --no-build-isolation --no-deps . \
    && pip check \
    && test -n "$(find /opt/venv -name 'graphql_http.cpython-311-*.so')"

# ---- runtime: the virtualenv only, run as an unprivileged user ---------------------------------
FROM python:3.11-slim AS runtime

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app

COPY --from=build /opt/venv /opt/venv

# An empty working directory: the code is imported from the installed package, not from a checkout.
WORKDIR /app
USER 10001:10001

EXPOSE 8000 8001
# The edge by default; the actions service is started with `python -m actions`.
CMD ["python", "-m", "edge"]
