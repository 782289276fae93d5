-- The catalog of processed images (enhance_ops.catalog) lives beside Airflow's metadata database.
CREATE DATABASE enhance_catalog OWNER airflow;
