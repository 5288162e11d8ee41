from setuptools import Extension, find_packages, setup

# The engine's inner loops (csv_pipeline/engine/_kernels.cpp): plain C++17 against the
# Python C API only, built by pip with the machine's C++ compiler.
kernels = Extension(
    "csv_pipeline.engine._kernels",
    sources=["csv_pipeline/engine/_kernels.cpp"],
    language="c++",
    extra_compile_args=["-std=c++17", "-O3"],
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
    ],
    extras_require={
        "dev": [
            "pytest==9.2.0",
            "moto[server]==5.2.5",
            "psutil==7.2.2",
        ],
        "bench": [
            "polars==2.1.0",
            "duckdb==2.0.1",
            "psutil==7.2.2",
        ],
    },
    entry_points={"console_scripts": ["csv-pipeline=csv_pipeline.cli:run"]},
)
