# Image for every Airflow service of docker-compose.yaml. The GPU worker is built with
# --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128 to get the CUDA build of torch.
FROM apache/airflow:3.3.2-python3.11
ARG TORCH_INDEX=""
COPY requirements.txt /opt/enhance/requirements.txt
RUN if [ -n "$TORCH_INDEX" ]; then pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.13.0; fi \
 && pip install --no-cache-dir -r /opt/enhance/requirements.txt
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root include/ /opt/airflow/include/
ENV ENHANCE_MODELS_DIR=/opt/airflow/include/models/weights
RUN python -m enhance_ops fetch-models
