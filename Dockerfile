# srlab web demo, CPU only. Mirrors `make setup`: CPU torch first (PyTorch's CPU index; the
# Makefile takes the same version from local disk), then every pinned, hash-checked package of
# requirements.lock, then srlab itself without resolving anything else.
# Untested here (no Docker engine on the machines srlab is built on).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY src ./src
RUN pip install --no-cache-dir pip==26.3 \
    && pip install --no-cache-dir --no-deps torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir --require-hashes -r requirements.lock \
    && pip install --no-cache-dir --no-deps --no-build-isolation .
EXPOSE 7860
CMD ["srlab", "serve", "--host", "0.0.0.0", "--port", "7860"]
