import os

from setuptools import Extension, find_packages, setup

# The engine's inner loops (csv_pipeline/engine/_kernels.cpp): plain C++17 against the
# Python C API only, built by pip with the machine's C++ compiler.
kernels = Extension(
    "csv_pipeline.engine._kernels",
    sources=["csv_pipeline/engine/_kernels.cpp"],
    language="c++",
    # Warnings on; CI sets CSV_PIPELINE_WERROR so that none lands, without failing a user's
    # install on a newer compiler's new warnings.
    extra_compile_args=[
        "-std=c++17",
        "-O3",
        "-Wall",
        "-Wextra",
        *(["-Werror"] if os.environ.get("CSV_PIPELINE_WERROR") else []),
    ],
)

setup(
    name="csv_pipeline",
    packages=find_packages(exclude=["csv_pipeline_tests"]),
    python_requires=">=3.11",
    ext_modules=[kernels],
    install_requires=[
        # dagster-dask/dagster-postgres 0.29.27 pin dagster==1.13.27 exactly; unpinned,
        # pip backtracks to dagster-dask 0.11.x, which does not work.
        "dagster==1.13.27",
        "dagster-webserver==1.13.27",
        "dagster-graphql==1.13.27",
        "dagster-dask==0.29.27",
        "dagster-postgres==0.29.27",
        # dagster-postgres connects through psycopg2 and builds `postgresql://` URLs; SQLAlchemy
        # 2.1 maps that scheme to psycopg 3, so the documented storage config would not start.
        "sqlalchemy==2.0.58",
        # The SQS client that reads the inbox's S3 notifications; s3fs (through aiobotocore) pins it.
        "botocore",
        "dask[distributed]==2026.8.0",
        "distributed==2026.8.0",
        "pandas==3.1.1",
        "pyarrow==26.0.1",
        "numpy==2.4.6",
        "fsspec==2026.9.0",
        "s3fs==2026.9.0",
        "tqdm==4.70.1",
        "psutil==7.2.2",  # the run launcher checks that a run's worker process is alive
        "requests>=2.31",
        # The play history table (Delta Lake) and the aggregation of `csv-pipeline history`.
        "deltalake==1.6.6",
        "duckdb==2.0.1",
    ],
    extras_require={
        "dev": [
            "pytest==9.2.0",
            "moto[server]==5.2.5",
            "psutil==7.2.2",
            # the browser test drives the system's Chromium (/usr/bin/chromium), not a downloaded one
            "playwright==1.65.2",
            # The second, independent reader of the play history in the tests.
            "polars==2.1.0",
            "hypothesis==6.170.17",
            # scripts/lint: lint rules and formatting, then the type check (pyproject.toml)
            "ruff==0.17.6",
            "pyright[nodejs]==1.1.414",
            # pandas's own annotations type a group-by sum as any scalar; only the benchmarks use pandas
            "pandas-stubs==3.1.0.261029",
        ],
        "bench": [
            "polars==2.1.0",
            "duckdb==2.0.1",
            "psutil==7.2.2",
        ],
    },
    entry_points={"console_scripts": ["csv-pipeline=csv_pipeline.cli.main:run"]},
)
