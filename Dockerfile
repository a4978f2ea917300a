# srlab web demo, CPU only. Mirrors the README install: CPU torch first, then srlab with the
# web extra. Untested here (no Docker engine on the machines srlab is built on).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install --no-cache-dir '.[web]'
EXPOSE 7860
CMD ["srlab", "serve", "--host", "0.0.0.0", "--port", "7860"]
