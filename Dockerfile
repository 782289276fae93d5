# Image for every Airflow service of docker-compose.yaml. torch comes from PyTorch's own index:
# the CPU build by default, the CUDA build for the GPU worker
# (--build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu128); pip then keeps it for the lock.
FROM apache/airflow:3.3.2-python3.11
ARG TORCH_INDEX="https://download.pytorch.org/whl/cpu"
COPY requirements.txt /opt/enhance/requirements.txt
RUN pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.13.0 \
 && pip install --no-cache-dir -r /opt/enhance/requirements.txt
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root include/ /opt/airflow/include/
ENV PYTHONPATH=/opt/airflow/plugins ENHANCE_MODELS_DIR=/opt/airflow/include/models/weights
RUN python -m enhance_ops fetch-models
